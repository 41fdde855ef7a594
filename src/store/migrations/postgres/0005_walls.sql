-- Video-wall layouts of the web UI, per principal (`user:NAME` or
-- `key:ID`) and name: the tile count and the camera of each tile, as JSON.
CREATE TABLE wall_layouts (
    owner         TEXT NOT NULL,
    name          TEXT NOT NULL,
    layout        TEXT NOT NULL,
    updated_at_ms BIGINT NOT NULL,
    PRIMARY KEY (owner, name)
);
