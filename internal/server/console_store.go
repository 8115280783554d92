package server

import (
	"context"
	"time"

	"github.com/bulwarkhq/bulwark/internal/store"
)

// ConsoleStore keeps what the console and fleet administration add: users,
// sessions, the audit log, state history and per-computer compliance
// figures kept current as reports arrive.
type ConsoleStore interface {
	CreateUser(ctx context.Context, u *store.User) error
	User(ctx context.Context, name string) (*store.User, error)
	ListUsers(ctx context.Context) ([]store.User, error)
	SetUserPassword(ctx context.Context, name, hash string, mustChange bool) error
	// SetUserAccess sets role and disabled (nil: enabled); it is
	// store.ErrLastAdminUser when no enabled admin user would be left.
	SetUserAccess(ctx context.Context, name, role string, disabled *time.Time) error

	CreateSession(ctx context.Context, s *store.Session) error
	// SessionByHash is store.ErrNotFound for an unknown or expired session.
	SessionByHash(ctx context.Context, hash string, now time.Time) (*store.Session, error)
	DeleteSession(ctx context.Context, hash string) error
	TouchSession(ctx context.Context, hash string, at time.Time) error
	DeleteSessionsOf(ctx context.Context, subject string) error

	AddAudit(ctx context.Context, e *store.AuditEntry) error
	// ListAudit lists entries newest first with ids below before (0: all).
	ListAudit(ctx context.Context, before int64, limit int) ([]store.AuditEntry, error)

	// ListSyncsBefore lists sync runs newest first with ids below before
	// (0: from the newest).
	ListSyncsBefore(ctx context.Context, before int64, limit int) ([]store.SyncRun, error)

	StateEvents(ctx context.Context, agentID string, limit int) ([]store.StateEvent, error)
	ListComputers(ctx context.Context, f store.ComputerFilter) ([]store.Computer, error)
	CountComputers(ctx context.Context, f store.ComputerFilter) (int, error)
	Computer(ctx context.Context, id string) (*store.Computer, error)
	GroupCompliance(ctx context.Context, staleBefore time.Time) ([]store.GroupCompliance, error)
	GroupStateCounts(ctx context.Context, group, vendor, id string) (map[string]int, error)
	RenameGroup(ctx context.Context, from, to string) error
}
