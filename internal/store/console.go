package store

import (
	"errors"
	"time"
)

// ErrLastAdminUser refuses a change that would leave no enabled admin
// user.
var ErrLastAdminUser = errors.New("the last enabled admin user")

// User is a person who signs in to the console. Only a password hash (argon2id; bcrypt
// from before, replaced at the next sign-in) of the
// password is kept.
type User struct {
	Name       string     `json:"name"`
	Role       string     `json:"role"`
	Hash       string     `json:"-"`
	CreatedAt  time.Time  `json:"created_at"`
	DisabledAt *time.Time `json:"disabled_at,omitempty"`
	// MustChange: the password was set by an admin; the user chooses a
	// new one before doing anything else.
	MustChange bool `json:"must_change,omitempty"`
}

// Session is a signed-in console session. Only the SHA-256 of the cookie's
// secret is kept; CSRF is the synchronizer token every form carries.
type Session struct {
	Hash      string
	Subject   string // "user:NAME" or "token:ID"
	Role      string
	CSRF      string
	CreatedAt time.Time
	ExpiresAt time.Time // absolute end
	SeenAt    time.Time // last use (to the minute), for the idle timeout
}

// AuditEntry is one administrative action: who, what, when, from where.
type AuditEntry struct {
	ID     int64     `json:"id"`
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`  // user:NAME or token:ID
	Via    string    `json:"via"`    // console | api
	Action string    `json:"action"` // e.g. approval.set
	Target string    `json:"target,omitempty"`
	Detail string    `json:"detail,omitempty"`
	Remote string    `json:"remote,omitempty"` // client address
}

// StateEvent is one reported state change, for a computer's timeline.
type StateEvent struct {
	Vendor   string    `json:"vendor"`
	UpdateID string    `json:"id"`
	State    string    `json:"state"`
	Detail   string    `json:"detail,omitempty"`
	At       time.Time `json:"at"`
}

// Compliance is one computer's figures, kept current as reports arrive:
// updates it needs (needed, downloaded or failed) by severity, failed
// installs, and whether it waits for a reboot.
type Compliance struct {
	MissingCritical  int  `json:"missing_critical"`
	MissingImportant int  `json:"missing_important"`
	MissingOther     int  `json:"missing_other"`
	Failed           int  `json:"failed"`
	PendingReboot    bool `json:"pending_reboot"`
}

// Computer is an agent with its compliance figures, as lists show it.
type Computer struct {
	Agent
	Compliance
}

// ComputerFilter selects computers; empty fields match everything.
type ComputerFilter struct {
	Search    string    // prefix of the hostname, or an exact id
	Group     string    //
	Status    string    // active | revoked | reenroll
	Missing   string    // critical | important | any
	Failed    bool      // with a failed install
	Reboot    bool      // waiting for a reboot
	OS        string    // exact OS string
	SeenAfter time.Time // last seen at or after (zero: any)
	StaleFrom time.Time // last seen before (zero: any); the dashboard's counts use the start of a UTC day
	After     string    // cursor: hostname + "\x00" + id of the last row shown
	Limit     int
}

// GroupCompliance is one group's row of the dashboard.
type GroupCompliance struct {
	Group            string `json:"group"`
	Computers        int    `json:"computers"`
	MissingCritical  int    `json:"missing_critical"`  // computers missing at least one critical update
	MissingImportant int    `json:"missing_important"` // … at least one important update
	MissingOther     int    `json:"missing_other"`
	Failed           int    `json:"failed"`         // computers with a failed install
	PendingReboot    int    `json:"pending_reboot"` // computers waiting for a reboot
	Stale            int    `json:"stale"`          // last seen on a UTC day before the stale time's
	Compliant        int    `json:"compliant"`      // missing nothing, nothing failed
}
