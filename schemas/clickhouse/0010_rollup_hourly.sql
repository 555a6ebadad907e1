-- 0010_rollup_hourly: visitors and pageviews of each site per hour, for totals and time series.
--
-- The overview's visitors and pageviews, unfiltered, over any hour-aligned period: instead of
-- scanning every pageview, merge one row per hour. Visitors are uniq states, so a period's visitors
-- are uniqMerge over its hours (summing hourly counts would count a visitor once per hour).
-- Bots are left out here; tracker/queries/site/bots_excluded.py counts them from events.
--
-- How every rollup migration (0010-0016) is built: the materialized view only sees inserts made
-- after it exists (no POPULATE: it cannot feed a TO table, and it would miss rows landing while it
-- runs), so the file then backfills the table from the events already stored, in one INSERT ...
-- SELECT guarded to run only while the table is empty: running the file again adds nothing. Run
-- it with ingestion stopped, as `odnos migrate` is run (before the collector starts, in embedded
-- and in server mode): a batch landing between the view's creation and the backfill would be
-- counted twice. To rebuild a rollup from events (after an interrupted backfill, say), stop
-- ingestion, TRUNCATE the table and run this file's INSERT again.
CREATE TABLE IF NOT EXISTS rollup_hourly
(
    site_id String,
    hour DateTime('UTC'),
    visitors AggregateFunction(uniq, String),
    pageviews AggregateFunction(count)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (site_id, hour);
CREATE MATERIALIZED VIEW IF NOT EXISTS rollup_hourly_mv TO rollup_hourly
AS SELECT site_id, toStartOfHour(ts) AS hour, uniqState(visitor_id) AS visitors, countState() AS pageviews
FROM events
WHERE name = 'pageview' AND is_bot = 0
GROUP BY site_id, hour;
INSERT INTO rollup_hourly
SELECT site_id, toStartOfHour(ts) AS hour, uniqState(visitor_id) AS visitors, countState() AS pageviews
FROM events
WHERE (SELECT count() FROM rollup_hourly) = 0 AND name = 'pageview' AND is_bot = 0
GROUP BY site_id, hour;
