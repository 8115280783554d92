-- +goose Up
-- The first schema, portable: times are BIGINT unix milliseconds, flags
-- INTEGER 0/1, text TEXT. sync_runs, whose key differs by dialect, is
-- version 2 (sqlite/ and postgres/).
CREATE TABLE tokens (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL,
    name         TEXT NOT NULL DEFAULT '',
    hash         TEXT NOT NULL UNIQUE,
    role         TEXT NOT NULL DEFAULT '',
    grp          TEXT NOT NULL DEFAULT '',
    client_group INTEGER NOT NULL DEFAULT 0,
    max_uses     INTEGER NOT NULL DEFAULT 0,
    uses         INTEGER NOT NULL DEFAULT 0,
    expires_at   BIGINT,
    revoked_at   BIGINT,
    created_at   BIGINT NOT NULL
);

CREATE TABLE groups (
    name       TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL
);

CREATE TABLE approvals (
    grp        TEXT NOT NULL REFERENCES groups(name) ON DELETE CASCADE,
    vendor     TEXT NOT NULL,
    update_id  TEXT NOT NULL,
    action     TEXT NOT NULL,
    deadline   BIGINT,
    rollout    INTEGER NOT NULL,
    by_token   TEXT NOT NULL DEFAULT '',
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (grp, vendor, update_id)
);

CREATE TABLE agents (
    id          TEXT PRIMARY KEY,
    machine_id  TEXT NOT NULL,
    hostname    TEXT NOT NULL,
    os          TEXT NOT NULL,
    arch        TEXT NOT NULL,
    grp         TEXT NOT NULL,
    cert_serial TEXT NOT NULL,
    status      TEXT NOT NULL,
    flag        TEXT NOT NULL DEFAULT '',
    token_id    TEXT NOT NULL DEFAULT '',
    enrolled_at BIGINT NOT NULL,
    last_seen   BIGINT NOT NULL,
    inventory   TEXT
);
CREATE INDEX agents_grp ON agents (grp);
CREATE INDEX agents_machine ON agents (machine_id);

CREATE TABLE reports (
    agent_id    TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    batch_id    TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (agent_id, batch_id)
);

CREATE TABLE agent_states (
    agent_id   TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    vendor     TEXT NOT NULL,
    update_id  TEXT NOT NULL,
    state      TEXT NOT NULL,
    detail     TEXT NOT NULL DEFAULT '',
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (agent_id, vendor, update_id)
);
CREATE INDEX agent_states_update ON agent_states (vendor, update_id);

CREATE TABLE updates (
    vendor         TEXT NOT NULL,
    id             TEXT NOT NULL,
    title          TEXT NOT NULL,
    product        TEXT NOT NULL,
    classification TEXT NOT NULL,
    severity       TEXT NOT NULL,
    released       TEXT NOT NULL DEFAULT '',
    sha256         TEXT NOT NULL,
    indexed_at     BIGINT NOT NULL,
    PRIMARY KEY (vendor, id)
);

-- +goose Down
DROP TABLE updates;
DROP TABLE agent_states;
DROP TABLE reports;
DROP TABLE agents;
DROP TABLE approvals;
DROP TABLE groups;
DROP TABLE tokens;
