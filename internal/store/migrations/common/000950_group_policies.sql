-- +goose Up
-- The central policy of a computer group (package policy's Group as JSON),
-- delivered to its agents at check-in. A new setting needs no migration.
CREATE TABLE group_policies (
    grp        TEXT PRIMARY KEY REFERENCES groups(name) ON DELETE CASCADE,
    policy     TEXT NOT NULL,
    updated_by TEXT NOT NULL DEFAULT '',
    updated_at BIGINT NOT NULL
);

-- +goose Down
DROP TABLE group_policies;
