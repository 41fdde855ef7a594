-- Catalogue: districts, checkpoints, cameras and their tags.
-- Codes and IDs are plain text in natural length; subtree filters are range
-- scans on district_code (see catalogue/district.rs).
CREATE TABLE districts (
    code        TEXT PRIMARY KEY,
    parent_code TEXT,
    name        TEXT NOT NULL,
    level       INTEGER NOT NULL
);
CREATE INDEX districts_parent ON districts (parent_code, code);

CREATE TABLE checkpoints (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    district_code TEXT NOT NULL REFERENCES districts (code),
    kind          TEXT NOT NULL,
    address       TEXT NOT NULL DEFAULT '',
    longitude     REAL,
    latitude      REAL,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
);
CREATE INDEX checkpoints_district ON checkpoints (district_code, id);

CREATE TABLE cameras (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    district_code TEXT NOT NULL REFERENCES districts (code),
    checkpoint_id TEXT REFERENCES checkpoints (id),
    point_type    INTEGER NOT NULL,
    ownership     TEXT NOT NULL,
    industry_code TEXT NOT NULL,
    address       TEXT NOT NULL DEFAULT '',
    longitude     REAL,
    latitude      REAL,
    rtsp_url      TEXT NOT NULL,
    username      TEXT,
    password      TEXT,
    transport     TEXT NOT NULL,
    pull_mode     TEXT NOT NULL,
    enabled       INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX cameras_district ON cameras (district_code, id);
CREATE INDEX cameras_checkpoint ON cameras (checkpoint_id, id);

CREATE TABLE camera_tags (
    camera_id TEXT NOT NULL REFERENCES cameras (id) ON DELETE CASCADE,
    key       TEXT NOT NULL,
    value     TEXT NOT NULL,
    PRIMARY KEY (camera_id, key)
) WITHOUT ROWID;
CREATE INDEX camera_tags_kv ON camera_tags (key, value, camera_id);

-- Substring search: lower(name | id | address) per camera, kept by the
-- application. A narrow table of its own, so a search that must look at
-- every camera scans a few MB instead of the whole camera rows; its primary
-- key order is the camera ID order pages are served in.
CREATE TABLE camera_search (
    camera_id TEXT PRIMARY KEY REFERENCES cameras (id) ON DELETE CASCADE,
    text      TEXT NOT NULL
) WITHOUT ROWID;
