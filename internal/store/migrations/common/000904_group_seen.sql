-- +goose Up
-- How many computers of each group were last seen on each UTC day (unix
-- milliseconds / 86400000), kept current by the triggers of 000905, so the
-- dashboard counts machines not seen for N days from a few rows per group
-- instead of scanning every computer.
CREATE TABLE group_seen (
    grp TEXT NOT NULL,
    day BIGINT NOT NULL,
    n   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (grp, day)
);
INSERT INTO group_seen (grp, day, n) SELECT grp, last_seen / 86400000, COUNT(*) FROM agents GROUP BY grp, last_seen / 86400000;

-- +goose Down
DROP TABLE group_seen;
