package server

import (
	"context"
	"time"

	"github.com/bulwarkhq/bulwark/internal/store"
)

// Store is everything the server keeps besides files. Backends return the
// store package's sentinel errors (store.ErrNotFound, ErrExists,
// ErrExhausted) so the server can answer 404, 409 and 403.
type Store interface {
	TokenStore
	GroupStore
	AgentStore
	UpdateStore
	SyncStore
	// Prune deletes the history a retention policy no longer keeps.
	Prune(ctx context.Context, r store.Retention, now time.Time) (store.Pruned, error)
	ConsoleStore
	PolicyStore
	RolloutStore
	LockdownStore
	Close() error
}

// Coordinator is the optional capability of a store that several server
// replicas share (PostgreSQL): one cluster-wide lock for signing the site
// repository, and notifications that it changed so that every replica drops
// its caches.
type Coordinator interface {
	LockSite(ctx context.Context) (unlock func(), err error)
	NotifySite(ctx context.Context) error
	// ListenSite calls fn at every change another replica announces, until
	// ctx ends.
	ListenSite(ctx context.Context, fn func()) error
}

// TokenStore keeps API and enrollment tokens, by hash only.
type TokenStore interface {
	CreateToken(ctx context.Context, t *store.Token) error
	TokenByHash(ctx context.Context, hash string) (*store.Token, error)
	ListTokens(ctx context.Context, kind string) ([]store.Token, error)
	RevokeToken(ctx context.Context, id string, at time.Time) error
	// RevokeTokenKeepingAdmin revokes a token unless it is the last usable
	// admin token (store.ErrLastAdmin), atomically in the database, so the
	// rule holds across server processes sharing it.
	RevokeTokenKeepingAdmin(ctx context.Context, id string, at time.Time) error
	// UseToken counts one use of a usable token at now, atomically; a token
	// that is revoked, expired or used up is store.ErrExhausted.
	UseToken(ctx context.Context, id string, now time.Time) error
}

// GroupStore keeps computer groups and their approvals.
type GroupStore interface {
	CreateGroup(ctx context.Context, name string, at time.Time) error
	ListGroups(ctx context.Context) ([]store.Group, error)
	// DeleteGroup removes a group with its approvals; its computers move to
	// moveTo.
	DeleteGroup(ctx context.Context, name, moveTo string) error
	SetApproval(ctx context.Context, a *store.Approval) error
	DeleteApproval(ctx context.Context, group, vendor, id string) error
	Approvals(ctx context.Context, group string) ([]store.Approval, error)
	GroupExists(ctx context.Context, group string) (bool, error)
}

// AgentStore keeps enrolled machines and what they report.
type AgentStore interface {
	CreateAgent(ctx context.Context, a *store.Agent) error
	// EnrollAgents stores enrollments (a use of the token and the new
	// agent) in one transaction: errs[i] is store.ErrExhausted when the
	// token of es[i] was no longer usable (nothing stored for it); err
	// fails them all.
	EnrollAgents(ctx context.Context, es []store.Enrollment) (errs []error, err error)
	Agent(ctx context.Context, id string) (*store.Agent, error)
	// AgentIdentity is Agent with only what an agent request checks:
	// ID, MachineID, Group, CertSerial, PrevCertSerial, Status and Flag.
	AgentIdentity(ctx context.Context, id string) (*store.Agent, error)
	ListAgents(ctx context.Context, group string) ([]store.Agent, error)
	AgentsByMachine(ctx context.Context, machineID string) ([]store.Agent, error)
	DeleteAgent(ctx context.Context, id string) error
	MoveAgents(ctx context.Context, ids []string, group string) error
	SetAgentStatus(ctx context.Context, id, status, flag string) error
	// RenewAgentCert replaces the certificate with serial from (the
	// current one, or the one the last renewal replaced) by serial to;
	// another serial is store.ErrNotFound.
	RenewAgentCert(ctx context.Context, id, from, to string, notAfter time.Time) error
	// ForgetPrevCert stops accepting the certificate the last renewal
	// replaced.
	ForgetPrevCert(ctx context.Context, id string) error
	// CertExpiry counts active agents whose certificate expires before
	// each time in before, and the earliest expiry (zero: none recorded).
	CertExpiry(ctx context.Context, before []time.Time) ([]int, time.Time, error)
	TouchAgent(ctx context.Context, id string, at time.Time) error
	// TouchAgents records several agents' last-seen times in one
	// transaction; unknown agents are skipped, and a time never moves back.
	TouchAgents(ctx context.Context, seen map[string]time.Time) error
	// ApplyReport stores a batch once: a batch id seen before for this agent
	// changes nothing and returns applied=false.
	ApplyReport(ctx context.Context, r *store.Report) (applied bool, err error)
	AgentStates(ctx context.Context, id string) ([]store.UpdateState, error)
	// StateCounts counts agents per state for each update ("vendor/id").
	StateCounts(ctx context.Context) (map[string]map[string]int, error)
	// AgentCounts counts agents per status.
	AgentCounts(ctx context.Context) (map[string]int, error)
}

// UpdateStore is the index of updates the server's repositories hold.
type UpdateStore interface {
	UpsertUpdates(ctx context.Context, us []store.Update) error
	// UpdateHashes maps update id to the SHA-256 of the indexed update.json
	// for one vendor, so a sync reads only new or changed files.
	UpdateHashes(ctx context.Context, vendor string) (map[string]string, error)
	ListUpdates(ctx context.Context, f store.UpdateFilter) ([]store.Update, error)
	GetUpdate(ctx context.Context, vendor, id string) (*store.Update, error)
}

// SyncStore keeps sync history.
type SyncStore interface {
	StartSync(ctx context.Context, r *store.SyncRun) (int64, error)
	FinishSync(ctx context.Context, r *store.SyncRun) error
	ListSyncs(ctx context.Context, limit int) ([]store.SyncRun, error)
}
