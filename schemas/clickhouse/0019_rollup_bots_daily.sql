-- 0019_rollup_bots_daily: bot pageviews per site, day, detector reason and agent.
--
-- The count the dashboard shows beside its numbers ("N bot pageviews left out"), over whole
-- days without filters, without scanning every pageview for is_bot. Backfill and rerun: see 0010.
CREATE TABLE IF NOT EXISTS rollup_bots_daily
(
    site_id String,
    day Date,
    bot_reason String,
    browser String,
    visitors AggregateFunction(uniq, String),
    pageviews AggregateFunction(count)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (site_id, day, bot_reason, browser);
CREATE MATERIALIZED VIEW IF NOT EXISTS rollup_bots_daily_mv TO rollup_bots_daily
AS SELECT site_id, toDate(ts) AS day, bot_reason, browser, uniqState(visitor_id) AS visitors,
    countState() AS pageviews
FROM events
WHERE name = 'pageview' AND is_bot = 1
GROUP BY site_id, day, bot_reason, browser;
INSERT INTO rollup_bots_daily
SELECT site_id, toDate(ts) AS day, bot_reason, browser, uniqState(visitor_id) AS visitors,
    countState() AS pageviews
FROM events
WHERE (SELECT count() FROM rollup_bots_daily) = 0 AND name = 'pageview' AND is_bot = 1
GROUP BY site_id, day, bot_reason, browser;
