-- +goose Up
-- agents_last_seen (000900) repeats the leading column of agents_stale
-- (000902), which serves every query on last_seen as well; each last-seen
-- write (every report, every coalesced check-in) kept both current, two
-- index pages more in the write-ahead log per report.
DROP INDEX agents_last_seen;

-- +goose Down
CREATE INDEX agents_last_seen ON agents (last_seen);
