-- +goose Up
-- SQLite half of version 2 (twin: postgres/00002_sync_runs.sql): the key is
-- SQLite's rowid. IF NOT EXISTS because databases made before the schema was
-- split by dialect already have this table from version 1.
CREATE TABLE IF NOT EXISTS sync_runs (
    id               INTEGER PRIMARY KEY,
    vendor           TEXT NOT NULL,
    trigger_kind     TEXT NOT NULL,
    status           TEXT NOT NULL,
    error            TEXT NOT NULL DEFAULT '',
    changed          INTEGER NOT NULL DEFAULT 0,
    updates_fetched  INTEGER NOT NULL DEFAULT 0,
    payloads_fetched INTEGER NOT NULL DEFAULT 0,
    bytes_fetched    BIGINT NOT NULL DEFAULT 0,
    started_at       BIGINT NOT NULL,
    finished_at      BIGINT
);

-- +goose Down
DROP TABLE sync_runs;
