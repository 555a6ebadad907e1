-- 0020_rollup_funnel_hits: every non-bot pageview and custom event, narrow and sorted by what it is.
--
-- A funnel's steps are any pages and events, so no aggregate can hold it: windowFunnel needs each
-- visitor's hits with their times. Over raw events it reads every pageview of the period (its
-- path, visitor and time), since events are sorted by day first. This table keeps one row per hit
-- with only what a funnel reads, sorted by site, name and path: a step's hits are one range of the
-- primary key (a page pattern's fixed prefix, an event's name), so a funnel over months reads its
-- steps' rows and no others. Visitors are kept as cityHash64, as the raw funnel groups them.
-- Engagement reports (as many as pageviews, never a funnel step in practice) are left out; a
-- funnel with such a step, or with filters, reads raw events (tracker/queries/site/funnel.py).
-- Backfill and rerun: see 0010.
CREATE TABLE IF NOT EXISTS rollup_funnel_hits
(
    site_id String,
    name String,
    pathname String,
    ts DateTime('UTC'),
    visitor UInt64
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (site_id, name, pathname, ts);
CREATE MATERIALIZED VIEW IF NOT EXISTS rollup_funnel_hits_mv TO rollup_funnel_hits
AS SELECT site_id, name, pathname, ts, cityHash64(visitor_id) AS visitor
FROM events
WHERE is_bot = 0 AND name != 'engagement';
INSERT INTO rollup_funnel_hits
SELECT site_id, name, pathname, ts, cityHash64(visitor_id) AS visitor
FROM events
WHERE (SELECT count() FROM rollup_funnel_hits) = 0 AND is_bot = 0 AND name != 'engagement';
