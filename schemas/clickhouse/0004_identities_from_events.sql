-- 0004_identities_from_events: fill `identities` from the events that carry both ids.
--
-- The collector writes only to `events` (one spool, one insert path). A pageview that arrived
-- with a verified `_odn` hand-off from a tracked email link, or an `identify` event with a valid
-- HMAC, carries both a visitor_id and a contact_id; this view copies that link into `identities`
-- as the rows land, so segment and profile queries can join visitors to contacts.
CREATE MATERIALIZED VIEW IF NOT EXISTS identities_from_events TO identities
AS SELECT
    site_id,
    visitor_id,
    contact_id,
    if(name = 'identify', 'identify', 'email_link') AS method,
    ts
FROM events
WHERE contact_id != '' AND visitor_id != '' AND site_id != '' AND name IN ('pageview', 'identify')
