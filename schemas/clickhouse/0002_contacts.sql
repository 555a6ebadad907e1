-- 0002_contacts: people odnos can email, latest version wins.
--
-- Contacts arrive by import, through the API, or when a visitor identifies on a site. Every change
-- writes a whole new row with a higher `version`; ReplacingMergeTree keeps the newest, and readers
-- use FINAL (or argMax by version) so a change is effective at once. contact_id is derived from
-- the normalised email (see tracker.contacts), so the same person gets the same id everywhere.
-- `status` is the consent: subscribed, unsubscribed, bounced. `deleted` marks an erased contact.
CREATE TABLE IF NOT EXISTS contacts
(
    contact_id String,
    email String,
    first_name String,
    last_name String,
    status String,
    source String,
    created_at DateTime('UTC'),
    updated_at DateTime('UTC'),
    version UInt64,
    deleted UInt8,
    attrs Nested(key String, value String)
)
ENGINE = ReplacingMergeTree(version)
ORDER BY contact_id
