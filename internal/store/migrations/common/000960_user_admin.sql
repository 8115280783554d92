-- +goose Up
-- User administration and session timeouts (issue 9, console part 2): a user
-- an admin gave a temporary password must choose a new one at the next
-- sign-in; a session records when it was last used, so it ends after an
-- idle period as well as at its absolute expiry; sessions are found by
-- subject to end them all when a user is disabled or its password reset.
ALTER TABLE users ADD COLUMN must_change INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN seen_at BIGINT NOT NULL DEFAULT 0;
CREATE INDEX sessions_subject ON sessions (subject);

-- +goose Down
DROP INDEX sessions_subject;
ALTER TABLE sessions DROP COLUMN seen_at;
ALTER TABLE users DROP COLUMN must_change;
