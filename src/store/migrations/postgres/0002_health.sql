-- Health history: every state change of every camera. The district is
-- copied in at the time of the change, so history stays where it happened
-- when a camera moves or is deleted.
CREATE TABLE camera_transitions (
    id            BIGSERIAL PRIMARY KEY,
    camera_id     TEXT COLLATE "C" NOT NULL,
    district_code TEXT COLLATE "C" NOT NULL,
    at_ms         BIGINT NOT NULL,
    from_state    TEXT NOT NULL,
    to_state      TEXT NOT NULL,
    reason        TEXT
);
CREATE INDEX camera_transitions_camera ON camera_transitions (camera_id, at_ms);
CREATE INDEX camera_transitions_district ON camera_transitions (district_code, id);
CREATE INDEX camera_transitions_at ON camera_transitions (at_ms);
