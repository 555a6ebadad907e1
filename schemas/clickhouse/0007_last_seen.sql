-- 0007_last_seen: when each visitor and each contact last did something, kept as events land.
--
-- "Last seen more / less than D days ago" asks about the newest human activity of a contact: its
-- visits (through the visitors linked to it) and its own email opens and clicks. Scanning the
-- events for it reads most of the table (a 60-day window is two thirds of 90 days of events);
-- this table holds one row per (contact, site, visitor) instead, so the segment reads a few rows
-- per person whatever the number of events. Activity means what segments count as behaviour:
-- no bots, no machine opens or scanner clicks, and neither email_sent nor consent events (those
-- are done to the person, not by them), with the verdicts as the collector stored them (a later
-- machine_revision of a click is not applied here). ReplacingMergeTree(ts) keeps the newest time
-- per key once parts merge; readers compare ts with the window, so unmerged rows never matter.
-- The backfill below reads what was there before this view existed; running it twice changes no
-- maximum.
CREATE TABLE IF NOT EXISTS last_seen
(
    contact_id String,
    site_id String,
    visitor_id String,
    ts DateTime('UTC')
)
ENGINE = ReplacingMergeTree(ts)
ORDER BY (contact_id, site_id, visitor_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS last_seen_from_events TO last_seen
AS SELECT contact_id, site_id, visitor_id, max(ts) AS ts
FROM events
WHERE is_bot = 0 AND is_machine = 0 AND name NOT IN ('email_sent', 'consent')
GROUP BY contact_id, site_id, visitor_id;

INSERT INTO last_seen
SELECT contact_id, site_id, visitor_id, max(ts) AS ts
FROM events
WHERE is_bot = 0 AND is_machine = 0 AND name NOT IN ('email_sent', 'consent')
GROUP BY contact_id, site_id, visitor_id
