-- Catalogue: districts, checkpoints, cameras and their tags.
-- Code and ID columns use the "C" collation so that ordering (cursor
-- pagination) and the subtree range scans on district_code compare bytes,
-- exactly as SQLite does, whatever the database's locale.
CREATE TABLE districts (
    code        TEXT COLLATE "C" PRIMARY KEY,
    parent_code TEXT COLLATE "C",
    name        TEXT NOT NULL,
    level       BIGINT NOT NULL
);
CREATE INDEX districts_parent ON districts (parent_code, code);

CREATE TABLE checkpoints (
    id            TEXT COLLATE "C" PRIMARY KEY,
    name          TEXT NOT NULL,
    district_code TEXT COLLATE "C" NOT NULL REFERENCES districts (code),
    kind          TEXT NOT NULL,
    address       TEXT NOT NULL DEFAULT '',
    longitude     DOUBLE PRECISION,
    latitude      DOUBLE PRECISION,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
CREATE INDEX checkpoints_district ON checkpoints (district_code, id);

CREATE TABLE cameras (
    id            TEXT COLLATE "C" PRIMARY KEY,
    name          TEXT NOT NULL,
    district_code TEXT COLLATE "C" NOT NULL REFERENCES districts (code),
    checkpoint_id TEXT COLLATE "C" REFERENCES checkpoints (id),
    point_type    BIGINT NOT NULL,
    ownership     TEXT NOT NULL,
    industry_code TEXT NOT NULL,
    address       TEXT NOT NULL DEFAULT '',
    longitude     DOUBLE PRECISION,
    latitude      DOUBLE PRECISION,
    rtsp_url      TEXT NOT NULL,
    username      TEXT,
    password      TEXT,
    transport     TEXT NOT NULL,
    pull_mode     TEXT NOT NULL,
    enabled       BOOLEAN NOT NULL,
    created_at_ms BIGINT NOT NULL,
    updated_at_ms BIGINT NOT NULL
);
CREATE INDEX cameras_district ON cameras (district_code, id);
CREATE INDEX cameras_checkpoint ON cameras (checkpoint_id, id);

CREATE TABLE camera_tags (
    camera_id TEXT COLLATE "C" NOT NULL REFERENCES cameras (id) ON DELETE CASCADE,
    key       TEXT NOT NULL,
    value     TEXT NOT NULL,
    PRIMARY KEY (camera_id, key)
);
CREATE INDEX camera_tags_kv ON camera_tags (key, value, camera_id);

-- Substring search: lower(name | id | address) per camera, kept by the
-- application. A narrow table of its own, so a search that must look at
-- every camera scans a few MB instead of the whole camera rows; its primary
-- key order is the camera ID order pages are served in.
-- In PostgreSQL the primary key covers the text, so that scan is index-only.
CREATE TABLE camera_search (
    camera_id TEXT COLLATE "C" REFERENCES cameras (id) ON DELETE CASCADE,
    text      TEXT NOT NULL,
    PRIMARY KEY (camera_id) INCLUDE (text)
);
