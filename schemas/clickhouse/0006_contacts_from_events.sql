-- 0006_contacts_from_events: a visitor who identifies on a site becomes a contact, not only a link.
--
-- The collector writes only to `events` (one spool, one insert path). A verified `identify` carries
-- the contact id and, in props.email, the normalised address; a pageview with a valid `_odn`
-- hand-off from a tracked link carries only the contact id. This view turns both into a row of
-- `contacts` that can never win over a row written by an import or the API:
--
-- * rows written by tracker.crm carry versions of at least 2^32 (microseconds since the epoch),
--   so they replace these rows and are never replaced by them: an identify cannot change a
--   contact's name, attributes or consent (an unsubscribed person stays unsubscribed);
-- * an identify row's version falls as its time grows (2^32 - 1 - ts), so among identify rows the
--   first one wins and created_at stays the day the person first identified;
-- * a hand-off row (no email known) has version 0: it only holds the contact id until the address
--   arrives from an import, an identify or the API.
--
-- ClickHouse 18.16 fills no defaults for a view's target: every column of `contacts` must be
-- selected here. A migration that adds a column to `contacts` must drop and recreate this view
-- in the same file, or inserts into `events` fail on 18.16.
CREATE MATERIALIZED VIEW IF NOT EXISTS contacts_from_events TO contacts
AS SELECT
    contact_id,
    if(name = 'identify', props.value[indexOf(props.key, 'email')], '') AS email,
    '' AS first_name,
    '' AS last_name,
    'subscribed' AS status,
    if(name = 'identify', 'identify', 'email_link') AS source,
    ts AS created_at,
    ts AS updated_at,
    toUInt64(if(name = 'identify', 4294967295 - toUInt32(ts), 0)) AS version,
    toUInt8(0) AS deleted,
    emptyArrayString() AS `attrs.key`,
    emptyArrayString() AS `attrs.value`,
    emptyArrayString() AS tags
FROM events
WHERE contact_id != '' AND site_id != '' AND name IN ('pageview', 'identify')
