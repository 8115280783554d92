-- +goose Up
-- The console's audit log (every admin action: who, what, when, from where)
-- and the history of reported state changes (a computer's timeline). Their
-- keys are a rowid here, an identity column in PostgreSQL.
CREATE TABLE audit (
    id      INTEGER PRIMARY KEY,
    at      BIGINT NOT NULL,
    actor   TEXT NOT NULL,
    via     TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT NOT NULL DEFAULT '',
    detail  TEXT NOT NULL DEFAULT '',
    remote  TEXT NOT NULL DEFAULT ''
);

CREATE TABLE state_events (
    id        INTEGER PRIMARY KEY,
    agent_id  TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    vendor    TEXT NOT NULL,
    update_id TEXT NOT NULL,
    state     TEXT NOT NULL,
    detail    TEXT NOT NULL DEFAULT '',
    at        BIGINT NOT NULL
);
CREATE INDEX state_events_agent ON state_events (agent_id, id);

-- +goose Down
DROP TABLE state_events;
DROP TABLE audit;
