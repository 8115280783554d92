-- +goose Up
-- Lockdown compliance (issue 12): each computer's last reported audit of
-- its lockdown profile, and the rules it reported not passing (failing, in
-- error or waived), so a group's view counts failing rules across its
-- computers with one indexed query. Scores are kept in tenths (INTEGER) so
-- both dialects agree on them exactly.
CREATE TABLE agent_lockdown (
    agent_id      TEXT PRIMARY KEY REFERENCES agents(id) ON DELETE CASCADE,
    profile       TEXT NOT NULL,
    source        TEXT NOT NULL,
    score_tenths  INTEGER NOT NULL,
    pass          INTEGER NOT NULL,
    fail          INTEGER NOT NULL,
    waived        INTEGER NOT NULL,
    errors        INTEGER NOT NULL,
    notapplicable INTEGER NOT NULL,
    drift         INTEGER NOT NULL,
    error         TEXT NOT NULL DEFAULT '',
    audited_at    BIGINT NOT NULL,
    applied_at    BIGINT,
    received_at   BIGINT NOT NULL
);

CREATE TABLE agent_lockdown_rules (
    agent_id     TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    rule_id      TEXT NOT NULL,
    title        TEXT NOT NULL,
    severity     TEXT NOT NULL,
    result       TEXT NOT NULL,
    drift        INTEGER NOT NULL DEFAULT 0,
    cis          TEXT NOT NULL DEFAULT '',
    ssg          TEXT NOT NULL DEFAULT '',
    waiver       TEXT NOT NULL DEFAULT '',
    waived_until TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (agent_id, rule_id)
);
CREATE INDEX agent_lockdown_rules_rule ON agent_lockdown_rules (rule_id, result);

-- +goose Down
DROP INDEX agent_lockdown_rules_rule;
DROP TABLE agent_lockdown_rules;
DROP TABLE agent_lockdown;
