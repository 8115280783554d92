-- +goose Up
-- Agents renew their client certificates (issue 11): when the current one
-- expires (unix ms; 0 = enrolled before this was recorded), and the serial
-- it replaced, still accepted until the agent first uses the new one, so a
-- renewal whose answer was lost does not lock the agent out.
ALTER TABLE agents ADD COLUMN cert_not_after BIGINT NOT NULL DEFAULT 0;
ALTER TABLE agents ADD COLUMN prev_cert_serial TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE agents DROP COLUMN prev_cert_serial;
ALTER TABLE agents DROP COLUMN cert_not_after;
