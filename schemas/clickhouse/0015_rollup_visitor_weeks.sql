-- 0015_rollup_visitor_weeks: which ISO weeks (Monday first) each visitor of a site viewed a page in.
--
-- Retention by weekly cohort needs, per visitor, the first week seen and the weeks it came back:
-- one row per (site, week, visitor) instead of every pageview. Visitor ids are kept as cityHash64,
-- as the raw-event query hashes them. ReplacingMergeTree folds the repeats of a week. Bots are left
-- out. Backfill and rerun: see 0010.
CREATE TABLE IF NOT EXISTS rollup_visitor_weeks
(
    site_id String,
    week Date,
    visitor UInt64
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(week)
ORDER BY (site_id, week, visitor);
CREATE MATERIALIZED VIEW IF NOT EXISTS rollup_visitor_weeks_mv TO rollup_visitor_weeks
AS SELECT site_id, toMonday(ts) AS week, cityHash64(visitor_id) AS visitor
FROM events
WHERE name = 'pageview' AND is_bot = 0
GROUP BY site_id, week, visitor;
INSERT INTO rollup_visitor_weeks
SELECT site_id, toMonday(ts) AS week, cityHash64(visitor_id) AS visitor
FROM events
WHERE (SELECT count() FROM rollup_visitor_weeks) = 0 AND name = 'pageview' AND is_bot = 0
GROUP BY site_id, week, visitor;
