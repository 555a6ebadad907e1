-- 0013_rollup_events_daily: visitors and counts per site, day and event name (not pageviews).
--
-- The custom events table and event goals (signup, purchase, outbound, ...) over day-aligned
-- periods. Email and campaign events land here too and are left out by the query, which keeps
-- the view free of a list of names that would go stale. Backfill and rerun: see 0010.
CREATE TABLE IF NOT EXISTS rollup_events_daily
(
    site_id String,
    day Date,
    name String,
    visitors AggregateFunction(uniq, String),
    events AggregateFunction(count)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (site_id, day, name);
CREATE MATERIALIZED VIEW IF NOT EXISTS rollup_events_daily_mv TO rollup_events_daily
AS SELECT site_id, toDate(ts) AS day, name, uniqState(visitor_id) AS visitors, countState() AS events
FROM events
WHERE name NOT IN ('pageview', 'engagement') AND is_bot = 0
GROUP BY site_id, day, name;
INSERT INTO rollup_events_daily
SELECT site_id, toDate(ts) AS day, name, uniqState(visitor_id) AS visitors, countState() AS events
FROM events
WHERE (SELECT count() FROM rollup_events_daily) = 0 AND name NOT IN ('pageview', 'engagement') AND is_bot = 0
GROUP BY site_id, day, name;
