-- +goose Up
-- The group_compliance update trigger (000903) fires only when the group or
-- one of the figures it counts changes: whether each of miss_critical,
-- miss_important, miss_other, failed and pending_reboot is above zero
-- (compliant follows from those). A report that leaves them as they were
-- (most reports of a storm) then writes no group_compliance row: two
-- statements and one page of the write-ahead log less per report. The
-- PostgreSQL file of this pair does the same.
DROP TRIGGER agents_gc_update;

-- +goose StatementBegin
CREATE TRIGGER agents_gc_update AFTER UPDATE OF grp, miss_critical, miss_important, miss_other, failed, pending_reboot ON agents
WHEN OLD.grp IS NOT NEW.grp OR (OLD.miss_critical > 0) <> (NEW.miss_critical > 0) OR (OLD.miss_important > 0) <> (NEW.miss_important > 0)
    OR (OLD.miss_other > 0) <> (NEW.miss_other > 0) OR (OLD.failed > 0) <> (NEW.failed > 0)
    OR (OLD.pending_reboot > 0) <> (NEW.pending_reboot > 0) BEGIN
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
