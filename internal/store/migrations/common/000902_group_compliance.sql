-- +goose Up
-- Per-group compliance counts (computers, and those missing critical,
-- important or other updates, with failed installs, waiting for a reboot,
-- compliant), filled from the computers' figures here and kept current by
-- the triggers of 000903, so the dashboard reads one row per group whatever
-- the fleet's size; agents_stale serves the "not seen for N days" counts.
CREATE TABLE group_compliance (
    grp       TEXT PRIMARY KEY,
    computers INTEGER NOT NULL DEFAULT 0,
    critical  INTEGER NOT NULL DEFAULT 0,
    important INTEGER NOT NULL DEFAULT 0,
    other     INTEGER NOT NULL DEFAULT 0,
    failed    INTEGER NOT NULL DEFAULT 0,
    reboot    INTEGER NOT NULL DEFAULT 0,
    compliant INTEGER NOT NULL DEFAULT 0
);
INSERT INTO group_compliance (grp, computers, critical, important, other, failed, reboot, compliant)
    SELECT grp, COUNT(*),
        SUM(CASE WHEN miss_critical > 0 THEN 1 ELSE 0 END), SUM(CASE WHEN miss_important > 0 THEN 1 ELSE 0 END),
        SUM(CASE WHEN miss_other > 0 THEN 1 ELSE 0 END), SUM(CASE WHEN failed > 0 THEN 1 ELSE 0 END),
        SUM(CASE WHEN pending_reboot > 0 THEN 1 ELSE 0 END),
        SUM(CASE WHEN miss_critical = 0 AND miss_important = 0 AND miss_other = 0 AND failed = 0 THEN 1 ELSE 0 END)
    FROM agents GROUP BY grp;
CREATE INDEX agents_stale ON agents (last_seen, grp);

-- +goose Down
DROP INDEX agents_stale;
DROP TABLE group_compliance;
