-- 0011_rollup_dims_daily: visitors and pageviews per site, day, country, device, browser and OS.
--
-- Answers the countries, devices, browsers and OS tables, and the overview's visitors and
-- pageviews filtered by any of those four, over day-aligned periods. A day has a few hundred such
-- combinations even on a busy site, so this stays small. Backfill and rerun: see 0010.
CREATE TABLE IF NOT EXISTS rollup_dims_daily
(
    site_id String,
    day Date,
    country String,
    device String,
    browser String,
    os String,
    visitors AggregateFunction(uniq, String),
    pageviews AggregateFunction(count)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (site_id, day, country, device, browser, os);
CREATE MATERIALIZED VIEW IF NOT EXISTS rollup_dims_daily_mv TO rollup_dims_daily
AS SELECT site_id, toDate(ts) AS day, country, device, browser, os,
    uniqState(visitor_id) AS visitors, countState() AS pageviews
FROM events
WHERE name = 'pageview' AND is_bot = 0
GROUP BY site_id, day, country, device, browser, os;
INSERT INTO rollup_dims_daily
SELECT site_id, toDate(ts) AS day, country, device, browser, os,
    uniqState(visitor_id) AS visitors, countState() AS pageviews
FROM events
WHERE (SELECT count() FROM rollup_dims_daily) = 0 AND name = 'pageview' AND is_bot = 0
GROUP BY site_id, day, country, device, browser, os;
