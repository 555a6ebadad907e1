-- 0001_events: the one wide table every event lands in.
--
-- One row per event of any kind: pageview, engagement, custom names, identify, email_sent,
-- email_open, email_click, unsubscribe. Columns that do not apply to a kind stay at their default.
-- Partitioned by month so retention is DROP PARTITION (no TTL on 18.16); ordered by site and day
-- so a dashboard panel reads one site's time range and nothing else. Properties are parallel
-- arrays (no Map or JSON on 18.16): props.value[indexOf(props.key, 'plan')].
-- Bots and email machines are stored with a flag and a reason, never dropped, so reports can show
-- humans, machines, or both.
CREATE TABLE IF NOT EXISTS events
(
    event_id UUID,
    site_id String,
    name String,
    ts DateTime('UTC'),
    ts_ms UInt16,
    received_at DateTime('UTC'),
    source String,
    visitor_id String,
    session_id String,
    contact_id String,
    url String,
    hostname String,
    pathname String,
    referrer String,
    referrer_domain String,
    referrer_source String,
    utm_source String,
    utm_medium String,
    utm_campaign String,
    utm_term String,
    utm_content String,
    browser String,
    browser_version String,
    os String,
    os_version String,
    device String,
    country String,
    is_bot UInt8,
    bot_reason String,
    is_machine UInt8,
    machine_reason String,
    campaign_id String,
    message_id String,
    link_id String,
    target_url String,
    engaged_ms UInt32,
    scroll UInt8,
    props Nested(key String, value String)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (site_id, toDate(ts), name, visitor_id, ts)
