-- 0005_contact_tags: free-form labels on a contact ("vip", "newsletter", an import's --tag).
--
-- An array on the contact row rather than a table of its own: a tag condition in a segment is then
-- has(tags, 'vip') on the row FINAL already reads, and an upsert writes tags with the rest of the
-- row (the union of what the contact had and what the import adds). ClickHouse 18.16 has no
-- ADD COLUMN IF NOT EXISTS, so this file is not safe to rerun by hand; the migration runner applies
-- it once and records it.
ALTER TABLE contacts ADD COLUMN tags Array(String)
