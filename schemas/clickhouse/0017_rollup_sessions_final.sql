-- 0017_rollup_sessions_final: finished sessions, one plain row each, so old days need no grouping.
--
-- rollup_sessions (0014) must be grouped by session at every query, because a session's events
-- arrive in many inserts: the cost grows with the sessions in the period. A session cannot grow
-- once its day and the next are over, so tracker/queries/finish_sessions.py (run by the scheduler,
-- and after bulk loads) writes each finished day's sessions here as final values, one row per
-- session; queries read finished days from here with a plain scan and group only the days not
-- finished yet (``tracker.queries.sessions``). Both give the same rows, tested.
--
-- * rollup_sessions_final: one row per session, partitioned by the day it began, so a day is
--   replaced by DROP PARTITION and one INSERT.
-- * rollup_sessions_final_days: the ledger. A day counts as finished when its latest row (by
--   started, then done) has done = 1; finishing writes done = 0 first, so a day half rewritten
--   is read from rollup_sessions meanwhile.
-- * rollup_session_changes: when events of each day last landed (server clock); a finished day
--   whose day, day before or day after changed since its finishing started is finished again (late
--   events: a spool replayed after an outage, an import of old data).
--
-- The change view fills from now on; its backfill stamps the days already stored (see 0010), so
-- the first run of the job finishes them.
CREATE TABLE IF NOT EXISTS rollup_sessions_final
(
    site_id String,
    day Date,
    session UInt64,
    visitor UInt64,
    began UInt64,
    views UInt64,
    engaged_time UInt64,
    actions UInt64,
    entry String,
    exit String,
    session_referrer_source String,
    session_referrer_domain String,
    session_utm_source String,
    session_utm_medium String,
    session_utm_campaign String,
    session_country String,
    session_device String,
    session_browser String,
    session_os String
)
ENGINE = MergeTree
PARTITION BY day
ORDER BY (site_id, day, session);
CREATE TABLE IF NOT EXISTS rollup_sessions_final_days
(
    day Date,
    started UInt32,
    done UInt8
)
ENGINE = MergeTree
ORDER BY day;
CREATE TABLE IF NOT EXISTS rollup_session_changes
(
    day Date,
    changed AggregateFunction(max, UInt32)
)
ENGINE = AggregatingMergeTree
ORDER BY day;
CREATE MATERIALIZED VIEW IF NOT EXISTS rollup_session_changes_mv TO rollup_session_changes
AS SELECT toDate(ts) AS day, maxState(toUInt32(now())) AS changed
FROM events
WHERE is_bot = 0 AND session_id != ''
GROUP BY day;
INSERT INTO rollup_session_changes
SELECT toDate(ts) AS day, maxState(toUInt32(now())) AS changed
FROM events
WHERE (SELECT count() FROM rollup_session_changes) = 0 AND is_bot = 0 AND session_id != ''
GROUP BY day;
