-- +goose Up
-- The group_compliance update trigger (000903) fires only when the group or
-- one of the figures it counts changes: whether each of miss_critical,
-- miss_important, miss_other, failed and pending_reboot is above zero
-- (compliant follows from those). A report that leaves them as they were
-- (most reports of a storm) then writes no group_compliance row. The SQLite
-- file of this pair does the same.
DROP TRIGGER agents_gc_update ON agents;
CREATE TRIGGER agents_gc_update AFTER UPDATE OF grp, miss_critical, miss_important, miss_other, failed, pending_reboot ON agents
    FOR EACH ROW
    WHEN (OLD.grp IS DISTINCT FROM NEW.grp OR (OLD.miss_critical > 0) <> (NEW.miss_critical > 0)
        OR (OLD.miss_important > 0) <> (NEW.miss_important > 0) OR (OLD.miss_other > 0) <> (NEW.miss_other > 0)
        OR (OLD.failed > 0) <> (NEW.failed > 0) OR (OLD.pending_reboot > 0) <> (NEW.pending_reboot > 0))
    EXECUTE FUNCTION agents_group_compliance();

-- +goose Down
DROP TRIGGER agents_gc_update ON agents;
CREATE TRIGGER agents_gc_update AFTER UPDATE OF grp, miss_critical, miss_important, miss_other, failed, pending_reboot ON agents
    FOR EACH ROW EXECUTE FUNCTION agents_group_compliance();
