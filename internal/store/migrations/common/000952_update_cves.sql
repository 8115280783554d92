-- +goose Up
-- The CVEs an update names, as " CVE-1 CVE-2 " (a space before and after
-- each) so that one is found with LIKE '% CVE-… %'.
ALTER TABLE updates ADD COLUMN cves TEXT NOT NULL DEFAULT '';
-- Every update is read again at the next index, which fills its CVEs.
UPDATE updates SET sha256 = '';

-- +goose Down
ALTER TABLE updates DROP COLUMN cves;
