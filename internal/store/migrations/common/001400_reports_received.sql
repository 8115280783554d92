-- +goose Up
-- Retention prunes reports by age (internal/server retention).
CREATE INDEX reports_received ON reports (received_at);

-- +goose Down
DROP INDEX reports_received;
