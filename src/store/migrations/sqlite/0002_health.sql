-- Health history: every state change of every camera. The district is
-- copied in at the time of the change, so history stays where it happened
-- when a camera moves or is deleted.
CREATE TABLE camera_transitions (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    camera_id     TEXT NOT NULL,
    district_code TEXT NOT NULL,
    at_ms         INTEGER NOT NULL,
    from_state    TEXT NOT NULL,
    to_state      TEXT NOT NULL,
    reason        TEXT
);
CREATE INDEX camera_transitions_camera ON camera_transitions (camera_id, at_ms);
CREATE INDEX camera_transitions_district ON camera_transitions (district_code, id);
CREATE INDEX camera_transitions_at ON camera_transitions (at_ms);
