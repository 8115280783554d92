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
	"fmt"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/approval"
	"github.com/bulwarkhq/bulwark/internal/catalog"
)

// Mode is how much the agent does by itself (the Automatic Updates options).
type Mode string

// The modes.
const (
	ModeNotify    Mode = "notify"    // tell the user; download nothing
	ModeDownload  Mode = "download"  // download, tell the user, install on request
	ModeAuto      Mode = "auto"      // download; install at or above AutoInstallSeverity; the rest as download
	ModeScheduled Mode = "scheduled" // auto, but installs only inside the maintenance window
)

// ParseMode checks a mode name.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case ModeNotify, ModeDownload, ModeAuto, ModeScheduled:
		return m, nil
	}
	return "", fmt.Errorf("policy mode %q: use notify, download, auto or scheduled", s)
}

// Window is a weekly maintenance window: on the given days, from Start for
// Duration, in the machine's local time.
type Window struct {
	Days     []time.Weekday
	Start    time.Duration // since midnight
	Duration time.Duration
}

// Contains reports whether t falls inside the window (which may run past
// midnight into the next day).
func (w Window) Contains(t time.Time) bool {
	for back := 0; back <= 1; back++ {
		day := t.AddDate(0, 0, -back)
		midnight := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, t.Location())
		start := midnight.Add(w.Start)
		if !w.hasDay(day.Weekday()) {
			continue
		}
		if !t.Before(start) && t.Before(start.Add(w.Duration)) {
			return true
		}
	}
	return false
}

func (w Window) hasDay(d time.Weekday) bool {
	if len(w.Days) == 0 {
		return true
	}
	for _, x := range w.Days {
		if x == d {
			return true
		}
	}
	return false
}

// ParseWindow reads "mon,wed 02:00-04:30" or "daily 22:00-02:00".
func ParseWindow(s string) (Window, error) {
	bad := func(why string) (Window, error) {
		return Window{}, fmt.Errorf("maintenance window %q: %s (example: \"mon,thu 02:00-04:00\" or \"daily 23:00-01:00\")", s, why)
	}
	days, span, ok := strings.Cut(strings.TrimSpace(s), " ")
	if !ok {
		return bad("give days and a time span")
	}
	var w Window
	if days != "daily" {
		names := map[string]time.Weekday{"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday, "thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday}
		for _, d := range strings.Split(days, ",") {
			wd, ok := names[strings.ToLower(d)]
			if !ok {
				return bad(fmt.Sprintf("unknown day %q; use sun..sat or daily", d))
			}
			w.Days = append(w.Days, wd)
		}
	}
	from, to, ok := strings.Cut(strings.TrimSpace(span), "-")
	if !ok {
		return bad("give the span as HH:MM-HH:MM")
	}
	f, err1 := clock(from)
	e, err2 := clock(to)
	if err1 != nil || err2 != nil {
		return bad("times are HH:MM, 00:00 to 23:59")
	}
	w.Start = f
	w.Duration = e - f
	if w.Duration <= 0 {
		w.Duration += 24 * time.Hour
	}
	return w, nil
}

func clock(s string) (time.Duration, error) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, err
	}
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute, nil
}

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
