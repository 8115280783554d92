// Package agent is the program on every managed machine: it checks in with
// its update server, learns what its group is approved to install, decides
// with the machine's policy what to download and install, installs in one
// journaled pass with at most one reboot, and reports what happened.
//
// It must install nothing that the site repository does not approve and the
// vendor repository does not sign with the same hashes; it must never install
// an update twice after a crash; and it must never reboot more than once per
// pass.
package agent

import (
	"crypto/sha256"
	"encoding/binary"
	"time"

	"github.com/bulwarkhq/bulwark/internal/approval"
	"github.com/bulwarkhq/bulwark/internal/catalog"
	"github.com/bulwarkhq/bulwark/internal/policy"
)

// The policy vocabulary lives in internal/policy, shared with the server's
// group policies.
type (
	// Mode is how much the agent does by itself.
	Mode = policy.Mode
	// Window is a weekly maintenance window.
	Window = policy.Window
)

// The modes.
const (
	ModeNotify    = policy.ModeNotify
	ModeDownload  = policy.ModeDownload
	ModeAuto      = policy.ModeAuto
	ModeScheduled = policy.ModeScheduled
)

// ParseMode checks a mode name.
func ParseMode(s string) (Mode, error) { return policy.ParseMode(s) }

// ParseWindow reads "mon,wed 02:00-04:30" or "daily 22:00-02:00".
func ParseWindow(s string) (Window, error) { return policy.ParseWindow(s) }

// Policy is the machine's update policy.
type Policy struct {
	Mode                Mode
	AutoInstallSeverity catalog.Severity // auto and scheduled: install by themselves at or above this
	Window              Window           // scheduled only
}

// Action is what the agent does with an approved, applicable update now.
type Action int

// The actions, in increasing order of how far the agent goes.
const (
	ActionNotify   Action = iota // tell the user it is available
	ActionDownload               // download it and wait for a person
	ActionInstall                // download and install it in this pass
)

func (a Action) String() string {
	return [...]string{"notify", "download", "install"}[a]
}

// Decide applies the policy to one approved update at time now. A deadline
// from the site that has passed overrides every mode; asked is true when a
// person asked to install now (`bulwark agent install`).
func (p Policy) Decide(a approval.Approval, u *catalog.Update, now time.Time, asked bool) Action {
	if asked || (a.Deadline != nil && !now.Before(*a.Deadline)) {
		return ActionInstall
	}
	switch p.Mode {
	case ModeNotify:
		return ActionNotify
	case ModeAuto, ModeScheduled:
		if u.Severity.Rank() >= p.AutoInstallSeverity.Rank() && (p.Mode == ModeAuto || p.Window.Contains(now)) {
			return ActionInstall
		}
	}
	return ActionDownload
}

// InRollout reports whether this machine is among the first percent of its
// group for an update. The choice is a stable hash of (agent id, update), so
// the same machines go first every time and raising the percentage only adds
// machines.
func InRollout(agentID, vendor, id string, percent int) bool {
	if percent >= 100 {
		return true
	}
	h := sha256.Sum256([]byte(agentID + "\x00" + vendor + "\x00" + id))
	return int(binary.BigEndian.Uint64(h[:8])%100) < percent
}
