-- +goose Up
-- A trigger function that keeps group_compliance (000902) current on every
-- change of a computer's group or figures (not on last_seen). The SQLite
-- file of this pair does the same with three triggers.
-- +goose StatementBegin
CREATE FUNCTION agents_group_compliance() RETURNS trigger AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE group_compliance SET computers = computers - 1,
            critical = critical - (OLD.miss_critical > 0)::int, important = important - (OLD.miss_important > 0)::int,
            other = other - (OLD.miss_other > 0)::int, failed = failed - (OLD.failed > 0)::int,
            reboot = reboot - (OLD.pending_reboot > 0)::int,
            compliant = compliant - (OLD.miss_critical = 0 AND OLD.miss_important = 0 AND OLD.miss_other = 0 AND OLD.failed = 0)::int
        WHERE grp = OLD.grp;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        INSERT INTO group_compliance AS g (grp, computers, critical, important, other, failed, reboot, compliant)
        VALUES (NEW.grp, 1, (NEW.miss_critical > 0)::int, (NEW.miss_important > 0)::int, (NEW.miss_other > 0)::int,
            (NEW.failed > 0)::int, (NEW.pending_reboot > 0)::int,
            (NEW.miss_critical = 0 AND NEW.miss_important = 0 AND NEW.miss_other = 0 AND NEW.failed = 0)::int)
        ON CONFLICT (grp) DO UPDATE SET computers = g.computers + 1, critical = g.critical + excluded.critical,
            important = g.important + excluded.important, other = g.other + excluded.other, failed = g.failed + excluded.failed,
            reboot = g.reboot + excluded.reboot, compliant = g.compliant + excluded.compliant;
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
-- +goose StatementEnd

CREATE TRIGGER agents_gc_insert_delete AFTER INSERT OR DELETE ON agents FOR EACH ROW EXECUTE FUNCTION agents_group_compliance();
CREATE TRIGGER agents_gc_update AFTER UPDATE OF grp, miss_critical, miss_important, miss_other, failed, pending_reboot ON agents
    FOR EACH ROW EXECUTE FUNCTION agents_group_compliance();

-- +goose Down
DROP TRIGGER agents_gc_update ON agents;
DROP TRIGGER agents_gc_insert_delete ON agents;
DROP FUNCTION agents_group_compliance();
