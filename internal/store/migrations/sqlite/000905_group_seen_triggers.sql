-- +goose Up
-- Triggers that keep group_seen (000904) current. A check-in fires the
-- update trigger only when it moves a computer to another UTC day (at most
-- once a day per computer). The PostgreSQL file of this pair does the same
-- with one trigger function.
-- +goose StatementBegin
CREATE TRIGGER agents_seen_insert AFTER INSERT ON agents BEGIN
    INSERT INTO group_seen (grp, day, n) VALUES (NEW.grp, NEW.last_seen / 86400000, 1)
    ON CONFLICT (grp, day) DO UPDATE SET n = n + 1;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER agents_seen_delete AFTER DELETE ON agents BEGIN
    UPDATE group_seen SET n = n - 1 WHERE grp = OLD.grp AND day = OLD.last_seen / 86400000;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER agents_seen_update AFTER UPDATE OF grp, last_seen ON agents
WHEN OLD.grp IS NOT NEW.grp OR OLD.last_seen / 86400000 <> NEW.last_seen / 86400000 BEGIN
    UPDATE group_seen SET n = n - 1 WHERE grp = OLD.grp AND day = OLD.last_seen / 86400000;
    INSERT INTO group_seen (grp, day, n) VALUES (NEW.grp, NEW.last_seen / 86400000, 1)
    ON CONFLICT (grp, day) DO UPDATE SET n = n + 1;
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER agents_seen_update;
DROP TRIGGER agents_seen_delete;
DROP TRIGGER agents_seen_insert;
