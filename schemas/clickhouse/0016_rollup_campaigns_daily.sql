-- 0016_rollup_campaigns_daily: email events per campaign, day, kind, person or machine, and link.
--
-- Campaign reports (sent, opens, clicks, bounces, unsubscribes) read this instead of the events
-- table. Email events are counted whatever their site: an open pixel carries no site. `machine` is
-- 1 for Apple Mail Privacy Protection opens, link scanners and other mail machines (is_machine) and
-- for bot user agents (is_bot); `reason` says which. Unique counts are exact (uniqExact over
-- contact ids): campaign figures are small and people compare them with their sending tool's.
-- Backfill and rerun: see 0010.
CREATE TABLE IF NOT EXISTS rollup_campaigns_daily
(
    campaign_id String,
    day Date,
    name String,
    machine UInt8,
    reason String,
    link_id String,
    target_url String,
    events AggregateFunction(count),
    contacts AggregateFunction(uniqExact, String)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (campaign_id, day, name, machine, reason, link_id, target_url);
CREATE MATERIALIZED VIEW IF NOT EXISTS rollup_campaigns_daily_mv TO rollup_campaigns_daily
AS SELECT campaign_id, toDate(ts) AS day, name, toUInt8(is_machine OR is_bot) AS machine,
    if(is_machine = 1, machine_reason, bot_reason) AS reason, link_id, target_url,
    countState() AS events, uniqExactState(contact_id) AS contacts
FROM events
WHERE campaign_id != ''
GROUP BY campaign_id, day, name, machine, reason, link_id, target_url;
INSERT INTO rollup_campaigns_daily
SELECT campaign_id, toDate(ts) AS day, name, toUInt8(is_machine OR is_bot) AS machine,
    if(is_machine = 1, machine_reason, bot_reason) AS reason, link_id, target_url,
    countState() AS events, uniqExactState(contact_id) AS contacts
FROM events
WHERE (SELECT count() FROM rollup_campaigns_daily) = 0 AND campaign_id != ''
GROUP BY campaign_id, day, name, machine, reason, link_id, target_url;
