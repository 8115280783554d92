-- +goose Up
-- Automatic approval rules: updates that match (vendor, product,
-- classification, at least a severity) are approved for grp after a delay
-- from when the server indexed them, or, with after_grp (rings), once they
-- have been approved in after_grp for the delay and succeeded there.
CREATE TABLE approval_rules (
    id             TEXT PRIMARY KEY,
    grp            TEXT NOT NULL REFERENCES groups(name) ON DELETE CASCADE,
    vendor         TEXT NOT NULL DEFAULT '',
    product        TEXT NOT NULL DEFAULT '',
    classification TEXT NOT NULL DEFAULT '',
    min_severity   TEXT NOT NULL DEFAULT '',
    after_grp      TEXT NOT NULL DEFAULT '',
    delay_ms       BIGINT NOT NULL DEFAULT 0,
    deadline_ms    BIGINT NOT NULL DEFAULT 0,
    rollout        INTEGER NOT NULL DEFAULT 100,
    created_by     TEXT NOT NULL DEFAULT '',
    created_at     BIGINT NOT NULL
);

-- A rollout (an install approval in a group) that halted itself when its
-- failure rate passed the group's threshold, or was resumed (halted 0:
-- only results reported after changed_at count from then on).
CREATE TABLE rollout_halts (
    grp          TEXT NOT NULL,
    vendor       TEXT NOT NULL,
    update_id    TEXT NOT NULL,
    halted       INTEGER NOT NULL,
    reason       TEXT NOT NULL DEFAULT '',
    failed       INTEGER NOT NULL DEFAULT 0,
    results      INTEGER NOT NULL DEFAULT 0,
    changed_by   TEXT NOT NULL DEFAULT '',
    changed_at   BIGINT NOT NULL,
    PRIMARY KEY (grp, vendor, update_id),
    FOREIGN KEY (grp, vendor, update_id) REFERENCES approvals (grp, vendor, update_id) ON DELETE CASCADE ON UPDATE CASCADE
);

-- A group's halt threshold (no row: the server's default).
CREATE TABLE rollout_thresholds (
    grp            TEXT PRIMARY KEY REFERENCES groups(name) ON DELETE CASCADE,
    failed_percent INTEGER NOT NULL,
    min_results    INTEGER NOT NULL
);

-- +goose Down
DROP TABLE rollout_thresholds;
DROP TABLE rollout_halts;
DROP TABLE approval_rules;
