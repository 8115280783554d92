-- +goose Up
-- A trigger function that keeps group_seen (000904) current. A check-in
-- fires it only when it moves a computer to another UTC day. The SQLite file
-- of this pair does the same with three triggers.
-- +goose StatementBegin
CREATE FUNCTION agents_group_seen() RETURNS trigger AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE group_seen SET n = n - 1 WHERE grp = OLD.grp AND day = OLD.last_seen / 86400000;
    END IF;
    IF TG_OP IN ('UPDATE', 'INSERT') THEN
        INSERT INTO group_seen AS g (grp, day, n) VALUES (NEW.grp, NEW.last_seen / 86400000, 1)
        ON CONFLICT (grp, day) DO UPDATE SET n = g.n + 1;
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
-- +goose StatementEnd

CREATE TRIGGER agents_seen_insert_delete AFTER INSERT OR DELETE ON agents FOR EACH ROW EXECUTE FUNCTION agents_group_seen();
CREATE TRIGGER agents_seen_update AFTER UPDATE OF grp, last_seen ON agents FOR EACH ROW
    WHEN (OLD.grp IS DISTINCT FROM NEW.grp OR OLD.last_seen / 86400000 <> NEW.last_seen / 86400000)
    EXECUTE FUNCTION agents_group_seen();

-- +goose Down
DROP TRIGGER agents_seen_update ON agents;
DROP TRIGGER agents_seen_insert_delete ON agents;
DROP FUNCTION agents_group_seen();
