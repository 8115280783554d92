-- +goose Up
-- The console (issue 9): users, sign-in sessions, and per-computer
-- compliance figures kept current when reports arrive, so the dashboard and
-- computer lists never scan every state. The audit log and the state
-- history, whose keys differ by dialect, are 000901.
CREATE TABLE users (
    name        TEXT PRIMARY KEY,
    role        TEXT NOT NULL,
    pw_hash     TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    disabled_at BIGINT
);

CREATE TABLE sessions (
    hash       TEXT PRIMARY KEY,
    subject    TEXT NOT NULL,
    role       TEXT NOT NULL,
    csrf       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_expires ON sessions (expires_at);

ALTER TABLE agents ADD COLUMN miss_critical INTEGER NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN miss_important INTEGER NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN miss_other INTEGER NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN failed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN pending_reboot INTEGER NOT NULL DEFAULT 0;
CREATE INDEX agents_hostname ON agents (hostname, id);
CREATE INDEX agents_last_seen ON agents (last_seen);
CREATE INDEX agents_grp_host ON agents (grp, hostname, id);

-- +goose Down
DROP INDEX agents_grp_host;
DROP INDEX agents_last_seen;
DROP INDEX agents_hostname;
ALTER TABLE agents DROP COLUMN pending_reboot;
ALTER TABLE agents DROP COLUMN failed;
ALTER TABLE agents DROP COLUMN miss_other;
ALTER TABLE agents DROP COLUMN miss_important;
ALTER TABLE agents DROP COLUMN miss_critical;
DROP TABLE sessions;
DROP TABLE users;
