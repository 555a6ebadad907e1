-- 0012_rollup_pages_daily: visitors, pageviews and engaged time per site, day and page path.
--
-- The top pages table and page goals over day-aligned periods. Engagement events carry the path
-- of the page they report on, so the engaged time of a page is summed beside its pageviews (the
-- table's "time on page" is engaged time per pageview). Visitors count pageviews only. Backfill
-- and rerun: see 0010.
CREATE TABLE IF NOT EXISTS rollup_pages_daily
(
    site_id String,
    day Date,
    pathname String,
    visitors AggregateFunction(uniqIf, String, UInt8),
    pageviews AggregateFunction(sum, UInt64),
    engaged AggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (site_id, day, pathname);
CREATE MATERIALIZED VIEW IF NOT EXISTS rollup_pages_daily_mv TO rollup_pages_daily
AS SELECT site_id, toDate(ts) AS day, pathname,
    uniqIfState(visitor_id, name = 'pageview') AS visitors,
    sumState(toUInt64(name = 'pageview')) AS pageviews,
    sumState(toUInt64(if(name = 'engagement', engaged_ms, 0))) AS engaged
FROM events
WHERE name IN ('pageview', 'engagement') AND is_bot = 0
GROUP BY site_id, day, pathname;
INSERT INTO rollup_pages_daily
SELECT site_id, toDate(ts) AS day, pathname,
    uniqIfState(visitor_id, name = 'pageview') AS visitors,
    sumState(toUInt64(name = 'pageview')) AS pageviews,
    sumState(toUInt64(if(name = 'engagement', engaged_ms, 0))) AS engaged
FROM events
WHERE (SELECT count() FROM rollup_pages_daily) = 0 AND name IN ('pageview', 'engagement') AND is_bot = 0
GROUP BY site_id, day, pathname;
