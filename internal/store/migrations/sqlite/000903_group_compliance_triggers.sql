-- +goose Up
-- Triggers that keep group_compliance (000902) current on every change of a
-- computer's group or figures; last_seen changes (every check-in) do not
-- fire them. The PostgreSQL file of this pair does the same with one
-- trigger function.
-- +goose StatementBegin
CREATE TRIGGER agents_gc_insert AFTER INSERT ON agents BEGIN
    INSERT INTO group_compliance (grp, computers, critical, important, other, failed, reboot, compliant)
    VALUES (NEW.grp, 1, NEW.miss_critical > 0, NEW.miss_important > 0, NEW.miss_other > 0, NEW.failed > 0, NEW.pending_reboot > 0,
        NEW.miss_critical = 0 AND NEW.miss_important = 0 AND NEW.miss_other = 0 AND NEW.failed = 0)
    ON CONFLICT (grp) DO UPDATE SET computers = computers + 1, critical = critical + excluded.critical,
        important = important + excluded.important, other = other + excluded.other, failed = failed + excluded.failed,
        reboot = reboot + excluded.reboot, compliant = compliant + excluded.compliant;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER agents_gc_delete AFTER DELETE ON agents BEGIN
    UPDATE group_compliance SET computers = computers - 1, critical = critical - (OLD.miss_critical > 0),
        important = important - (OLD.miss_important > 0), other = other - (OLD.miss_other > 0), failed = failed - (OLD.failed > 0),
        reboot = reboot - (OLD.pending_reboot > 0),
        compliant = compliant - (OLD.miss_critical = 0 AND OLD.miss_important = 0 AND OLD.miss_other = 0 AND OLD.failed = 0)
    WHERE grp = OLD.grp;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER agents_gc_update AFTER UPDATE OF grp, miss_critical, miss_important, miss_other, failed, pending_reboot ON agents BEGIN
    UPDATE group_compliance SET computers = computers - 1, critical = critical - (OLD.miss_critical > 0),
        important = important - (OLD.miss_important > 0), other = other - (OLD.miss_other > 0), failed = failed - (OLD.failed > 0),
        reboot = reboot - (OLD.pending_reboot > 0),
        compliant = compliant - (OLD.miss_critical = 0 AND OLD.miss_important = 0 AND OLD.miss_other = 0 AND OLD.failed = 0)
    WHERE grp = OLD.grp;
    INSERT INTO group_compliance (grp, computers, critical, important, other, failed, reboot, compliant)
    VALUES (NEW.grp, 1, NEW.miss_critical > 0, NEW.miss_important > 0, NEW.miss_other > 0, NEW.failed > 0, NEW.pending_reboot > 0,
        NEW.miss_critical = 0 AND NEW.miss_important = 0 AND NEW.miss_other = 0 AND NEW.failed = 0)
    ON CONFLICT (grp) DO UPDATE SET computers = computers + 1, critical = critical + excluded.critical,
        important = important + excluded.important, other = other + excluded.other, failed = failed + excluded.failed,
        reboot = reboot + excluded.reboot, compliant = compliant + excluded.compliant;
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER agents_gc_update;
DROP TRIGGER agents_gc_delete;
DROP TRIGGER agents_gc_insert;
