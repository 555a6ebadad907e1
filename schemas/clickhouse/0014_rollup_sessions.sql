-- 0014_rollup_sessions: one row per site, day and session, holding what the session's metrics need.
--
-- Visits, bounce rate, visit duration, entry and exit pages, sources and UTM are properties of a
-- whole session, and a session's events arrive in many inserts, so no view can finish a session
-- as it lands. This table keeps mergeable states instead, per (day, session): the first pageview's
-- time as epoch milliseconds (`start`), pageview and custom event counts, engaged milliseconds,
-- and the entry pageview's page, referrer, UTM tags, country, device, browser and OS (`entry_*`, argMin by
-- that time; other events sort after every pageview, so they never win), and the exit page
-- (argMax). A query merges the rows of each session (a session that runs past midnight has one
-- row per day) and then counts sessions, which is far less work than grouping the raw events:
-- several events per session, strings instead of 64-bit hashes.
--
-- Session and visitor ids are kept as cityHash64, the same hash the raw-event queries apply, so both
-- paths count the same things. Bots are left out. Backfill and rerun: see 0010.
CREATE TABLE IF NOT EXISTS rollup_sessions
(
    site_id String,
    day Date,
    session UInt64,
    visitor UInt64,
    start AggregateFunction(min, UInt64),
    pageviews AggregateFunction(sum, UInt64),
    engaged AggregateFunction(sum, UInt64),
    interactions AggregateFunction(sum, UInt64),
    entry_page AggregateFunction(argMin, String, UInt64),
    exit_page AggregateFunction(argMax, String, UInt64),
    entry_referrer_source AggregateFunction(argMin, String, UInt64),
    entry_referrer_domain AggregateFunction(argMin, String, UInt64),
    entry_utm_source AggregateFunction(argMin, String, UInt64),
    entry_utm_medium AggregateFunction(argMin, String, UInt64),
    entry_utm_campaign AggregateFunction(argMin, String, UInt64),
    entry_country AggregateFunction(argMin, String, UInt64),
    entry_device AggregateFunction(argMin, String, UInt64),
    entry_browser AggregateFunction(argMin, String, UInt64),
    entry_os AggregateFunction(argMin, String, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (site_id, day, session, visitor);
CREATE MATERIALIZED VIEW IF NOT EXISTS rollup_sessions_mv TO rollup_sessions
AS SELECT
    site_id,
    toDate(ts) AS day,
    cityHash64(session_id) AS session,
    cityHash64(visitor_id) AS visitor,
    minState(if(name = 'pageview', toUInt64(ts) * 1000 + ts_ms, 18446744073709551615) AS k) AS start,
    sumState(toUInt64(name = 'pageview')) AS pageviews,
    sumState(toUInt64(if(name = 'engagement', engaged_ms, 0))) AS engaged,
    sumState(toUInt64(name NOT IN ('pageview', 'engagement', 'identify', '404'))) AS interactions,
    argMinState(pathname, k) AS entry_page,
    argMaxState(pathname, if(name = 'pageview', k, 0)) AS exit_page,
    argMinState(referrer_source, k) AS entry_referrer_source,
    argMinState(referrer_domain, k) AS entry_referrer_domain,
    argMinState(utm_source, k) AS entry_utm_source,
    argMinState(utm_medium, k) AS entry_utm_medium,
    argMinState(utm_campaign, k) AS entry_utm_campaign,
    argMinState(country, k) AS entry_country,
    argMinState(device, k) AS entry_device,
    argMinState(browser, k) AS entry_browser,
    argMinState(os, k) AS entry_os
FROM events
WHERE is_bot = 0 AND session_id != ''
GROUP BY site_id, day, session, visitor;
INSERT INTO rollup_sessions
SELECT
    site_id,
    toDate(ts) AS day,
    cityHash64(session_id) AS session,
    cityHash64(visitor_id) AS visitor,
    minState(if(name = 'pageview', toUInt64(ts) * 1000 + ts_ms, 18446744073709551615) AS k) AS start,
    sumState(toUInt64(name = 'pageview')) AS pageviews,
    sumState(toUInt64(if(name = 'engagement', engaged_ms, 0))) AS engaged,
    sumState(toUInt64(name NOT IN ('pageview', 'engagement', 'identify', '404'))) AS interactions,
    argMinState(pathname, k) AS entry_page,
    argMaxState(pathname, if(name = 'pageview', k, 0)) AS exit_page,
    argMinState(referrer_source, k) AS entry_referrer_source,
    argMinState(referrer_domain, k) AS entry_referrer_domain,
    argMinState(utm_source, k) AS entry_utm_source,
    argMinState(utm_medium, k) AS entry_utm_medium,
    argMinState(utm_campaign, k) AS entry_utm_campaign,
    argMinState(country, k) AS entry_country,
    argMinState(device, k) AS entry_device,
    argMinState(browser, k) AS entry_browser,
    argMinState(os, k) AS entry_os
FROM events
WHERE (SELECT count() FROM rollup_sessions) = 0 AND is_bot = 0 AND session_id != ''
GROUP BY site_id, day, session, visitor;
