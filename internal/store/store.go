// Package store holds the plain records an update server keeps (tokens,
// groups, approvals, agents, per-update states, the update index, sync
// history) and the errors every storage backend returns for them. The
// interfaces over these records are defined where they are used
// (internal/server); the backends live in subpackages (store/sqlite and
// store/postgres, sharing their queries in store/sqlstore).
//
// It must not contain storage code or import a database driver: the records
// are plain data so that every backend and every consumer agree on them.
package store

import (
	"errors"
	"time"
)

// Errors every backend returns, for callers to branch on.
var (
	ErrNotFound  = errors.New("not found")
	ErrExists    = errors.New("already exists")
	ErrExhausted = errors.New("token used up, expired or revoked")
	// ErrLastAdmin refuses to revoke the last usable admin API token.
	ErrLastAdmin = errors.New("the last usable admin token")
)

// Token kinds.
const (
	KindAPI    = "api"    // bearer token for /api/v1 with a role
	KindEnroll = "enroll" // enrollment token for agents
)

// Roles of API tokens, from most to least privileged.
const (
	RoleAdmin    = "admin"
	RoleApprover = "approver"
	RoleViewer   = "viewer"
)

// Agent statuses.
const (
	AgentActive   = "active"
	AgentRevoked  = "revoked"  // refused until enrolled again with a new token
	AgentReenroll = "reenroll" // flagged (e.g. a cloned disk image); must enroll again
	AgentPending  = "pending"  // claims the machine id of an active agent; waits for an admin's approval
)

// Sync statuses.
const (
	SyncRunning = "running"
	SyncOK      = "ok"
	SyncFailed  = "failed"
)

// Token is an API or enrollment token. Only the SHA-256 of the secret is
// stored; the secret itself is shown once when the token is made.
type Token struct {
	ID          string     `json:"id"`
	Kind        string     `json:"kind"`
	Name        string     `json:"name,omitempty"`
	Hash        string     `json:"-"`                      // hex SHA-256 of the secret
	Role        string     `json:"role,omitempty"`         // api tokens
	Group       string     `json:"group,omitempty"`        // enroll tokens: the group agents join
	ClientGroup bool       `json:"client_group,omitempty"` // enroll tokens: the agent may ask for its group
	MaxUses     int        `json:"max_uses,omitempty"`     // enroll tokens: 0 = unlimited
	Uses        int        `json:"uses"`
	ExpiresAt   *time.Time `json:"expires_at,omitempty"`
	RevokedAt   *time.Time `json:"revoked_at,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
}

// Usable reports whether the token may be used at now.
func (t *Token) Usable(now time.Time) bool {
	if t.RevokedAt != nil {
		return false
	}
	if t.ExpiresAt != nil && !now.Before(*t.ExpiresAt) {
		return false
	}
	return t.MaxUses == 0 || t.Uses < t.MaxUses
}

// Group is a computer group.
type Group struct {
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	Computers int       `json:"computers"`
}

// Approval is what a group is told to do with one update.
type Approval struct {
	Group     string     `json:"group"`
	Vendor    string     `json:"vendor"`
	UpdateID  string     `json:"id"`
	Action    string     `json:"action"`
	Deadline  *time.Time `json:"deadline,omitempty"`
	Rollout   int        `json:"rollout"`
	By        string     `json:"by,omitempty"` // token id that approved
	UpdatedAt time.Time  `json:"updated_at"`
}

// Agent is one enrolled machine.
type Agent struct {
	ID         string `json:"id"`
	MachineID  string `json:"machine_id"`
	Hostname   string `json:"hostname"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	Group      string `json:"group"`
	CertSerial string `json:"cert_serial"`
	// CertNotAfter is when the agent's current certificate expires (zero:
	// enrolled before expiry was recorded); agents renew at two thirds of
	// the lifetime.
	CertNotAfter time.Time `json:"cert_not_after,omitzero"`
	// PrevCertSerial is the certificate the last renewal replaced, accepted
	// until the agent first presents the new one.
	PrevCertSerial string    `json:"-"`
	Status         string    `json:"status"`
	Flag           string    `json:"flag,omitempty"` // why the status is not active
	TokenID        string    `json:"token_id,omitempty"`
	EnrolledAt     time.Time `json:"enrolled_at"`
	LastSeen       time.Time `json:"last_seen"`
	Inventory      []byte    `json:"-"` // last inventory, JSON as the agent sent it (validated)
}

// Enrollment is one machine enrolling: the use of its enrollment token
// and the agent it becomes, stored together (store.ErrExhausted when the
// token is no longer usable at At: then no agent is stored).
type Enrollment struct {
	TokenID string
	At      time.Time
	Agent   *Agent
}

// UpdateState is an agent's state for one update.
type UpdateState struct {
	Vendor    string    `json:"vendor"`
	UpdateID  string    `json:"id"`
	State     string    `json:"state"`
	Detail    string    `json:"detail,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Report is one batch an agent delivered.
type Report struct {
	AgentID    string
	BatchID    string
	Changes    []UpdateState
	Inventory  []byte          // nil when the batch carried none
	Lockdown   *LockdownStatus // nil when the batch carried no audit
	ReceivedAt time.Time
}

// Update is one entry of the update index, filled from verified vendor
// metadata after each sync.
type Update struct {
	Vendor         string    `json:"vendor"`
	ID             string    `json:"id"`
	Title          string    `json:"title"`
	Product        string    `json:"product"`
	Classification string    `json:"classification"`
	Severity       string    `json:"severity"`
	Released       string    `json:"released,omitempty"`
	CVEs           []string  `json:"cves,omitempty"`
	SHA256         string    `json:"sha256"` // of update.json: unchanged files are not read again
	IndexedAt      time.Time `json:"indexed_at"`
}

// UpdateFilter selects updates; empty fields match everything. CVE
// matches updates that name that CVE.
type UpdateFilter struct {
	Vendor, Product, Classification, Severity, CVE string
}

// SyncRun is one sync of one vendor repository.
type SyncRun struct {
	ID              int64      `json:"id"`
	Vendor          string     `json:"vendor"`
	Trigger         string     `json:"trigger"` // schedule | manual | start
	Status          string     `json:"status"`
	Error           string     `json:"error,omitempty"`
	Changed         bool       `json:"changed"`
	UpdatesFetched  int        `json:"updates_fetched"`
	PayloadsFetched int        `json:"payloads_fetched"`
	BytesFetched    int64      `json:"bytes_fetched"`
	StartedAt       time.Time  `json:"started_at"`
	FinishedAt      *time.Time `json:"finished_at,omitempty"`
}

// Retention is how long history is kept; a zero field keeps that history
// forever.
type Retention struct {
	// Reports is how long a delivered batch id is remembered (so that a
	// retry of it is recognised). A retry older than this is applied again,
	// which is harmless: a state never overwrites a newer one.
	Reports time.Duration `json:"reports" yaml:"reports"`
	// Syncs is how long finished sync runs are kept in the sync history.
	Syncs time.Duration `json:"syncs" yaml:"syncs"`
	// Events is how many reported state changes are kept per computer
	// (the console's timeline); older ones are deleted.
	Events int `json:"events" yaml:"events"`
}

// DefaultRetention keeps a month of batch ids (an agent offline longer
// than that re-sends harmlessly), a quarter of sync history and what a
// computer's timeline shows.
var DefaultRetention = Retention{Reports: 30 * 24 * time.Hour, Syncs: 90 * 24 * time.Hour, Events: TimelineEvents}

// TimelineEvents is how many state changes a computer's timeline shows.
const TimelineEvents = 100

// Pruned counts what one pruning pass deleted, by table.
type Pruned map[string]int64
