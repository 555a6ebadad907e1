-- 0018_rollup_surveys: each contact's latest survey score per campaign and day, for NPS.
--
-- People's `survey_response` events (machines left out) whose `score` property is a whole number
-- from 0 to 10; argMax by time keeps a contact's latest answer, so a changed mind counts once, as
-- its last score. A campaign's NPS merges its rows per contact, then counts promoters (9-10) and
-- detractors (0-6). Backfill and rerun: see 0010.
CREATE TABLE IF NOT EXISTS rollup_surveys
(
    campaign_id String,
    day Date,
    contact_id String,
    score AggregateFunction(argMax, UInt8, DateTime('UTC'))
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (campaign_id, day, contact_id);
CREATE MATERIALIZED VIEW IF NOT EXISTS rollup_surveys_mv TO rollup_surveys
AS SELECT campaign_id, toDate(ts) AS day, contact_id,
    argMaxState(toUInt8(props.value[indexOf(props.key, 'score')]), ts) AS score
FROM events
WHERE name = 'survey_response' AND campaign_id != '' AND is_machine = 0 AND is_bot = 0
  AND match(props.value[indexOf(props.key, 'score')], '^(10|[0-9])$')
GROUP BY campaign_id, day, contact_id;
INSERT INTO rollup_surveys
SELECT campaign_id, toDate(ts) AS day, contact_id,
    argMaxState(toUInt8(props.value[indexOf(props.key, 'score')]), ts) AS score
FROM events
WHERE (SELECT count() FROM rollup_surveys) = 0 AND name = 'survey_response' AND campaign_id != ''
  AND is_machine = 0 AND is_bot = 0 AND match(props.value[indexOf(props.key, 'score')], '^(10|[0-9])$')
GROUP BY campaign_id, day, contact_id;
