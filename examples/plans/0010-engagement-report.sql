-- title: Index and document engagement events for the weekly squad report
-- reason: The weekly report reads engagement_event by time; the index is built without blocking writes.

-- A plain SQL migration: each statement is a step, rated and placed by what
-- it does (both are additions: expand, H1 and H0), and proved when it runs.
CREATE INDEX CONCURRENTLY engagement_event_occurred_at_idx
    ON engagement_event (occurred_at);

COMMENT ON TABLE engagement_event IS 'One row per engagement: who, what kind, when';
COMMENT ON COLUMN engagement_event.occurred_at IS 'When it happened (was: at)';
