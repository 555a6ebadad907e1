-- 0003_identities: which site visitor is which contact.
--
-- Written when a visitor lands from a tracked email link (the `_odn` hand-off) or when the site
-- calls odnos.identify(). The newest link for a (site, visitor) wins; a contact may have many
-- visitors (devices). Segment and profile queries join events to contacts through this table.
CREATE TABLE IF NOT EXISTS identities
(
    site_id String,
    visitor_id String,
    contact_id String,
    method String,
    ts DateTime('UTC')
)
ENGINE = ReplacingMergeTree(ts)
ORDER BY (site_id, visitor_id)
