package policy

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/lockdown"
)

// Lockdown names a lockdown profile the group's agents keep applied, with
// the site's waivers. The agent applies it after enrollment, applies the
// rules an install brings into scope, never applies a waived rule, and
// reports drift rather than reverting it (internal/agent, lockdown.go).
// agent.yaml cannot override it (its lockdown_profile only audits).
type Lockdown struct {
	Profile string   `json:"profile"`
	Waivers []Waiver `json:"waivers,omitempty"`
}

// Waiver accepts one failing rule of the profile for a reason until a
// date (YYYY-MM-DD, through that day, UTC).
type Waiver struct {
	Rule    string `json:"rule"`
	Reason  string `json:"reason"`
	Expires string `json:"expires"`
}

// LockdownWaivers are the waivers in the lockdown engine's form; Check has
// validated them.
func (l *Lockdown) LockdownWaivers() []lockdown.Waiver {
	var out []lockdown.Waiver
	for _, w := range l.Waivers {
		if lw, err := lockdown.ParseWaiver(w.Rule, w.Reason, w.Expires); err == nil {
			out = append(out, lw)
		}
	}
	return out
}

// Check validates the profile name against the built-in catalog and every
// waiver (a rule of that profile, a reason, a date), each rule once.
func (l *Lockdown) Check() error {
	cat, err := lockdown.LoadCatalog()
	if err != nil {
		return err
	}
	sel, err := cat.Select(l.Profile, time.Now())
	if err != nil {
		var names []string
		for _, p := range cat.Profiles() {
			names = append(names, p.Name)
		}
		return fmt.Errorf("lockdown.profile %q: use one of %s", l.Profile, strings.Join(names, ", "))
	}
	seen := map[string]bool{}
	var ws []lockdown.Waiver
	for _, w := range l.Waivers {
		lw, err := lockdown.ParseWaiver(w.Rule, w.Reason, w.Expires)
		if err != nil {
			return fmt.Errorf("lockdown.waivers: %w", err)
		}
		if seen[w.Rule] {
			return fmt.Errorf("lockdown.waivers: %s is waived twice", w.Rule)
		}
		seen[w.Rule] = true
		ws = append(ws, lw)
	}
	if len(ws) > 500 {
		return errors.New("lockdown.waivers: at most 500")
	}
	// A waiver of a rule the profile does not hold is a typo that would
	// waive nothing.
	if err := sel.Waive(ws, time.Now()); err != nil {
		return fmt.Errorf("lockdown.waivers: %w", err)
	}
	return nil
}

// ParseWaiverFlag reads a waiver written "RULE until YYYY-MM-DD: reason".
func ParseWaiverFlag(s string) (Waiver, error) {
	head, reason, ok := strings.Cut(s, ":")
	rule, date, ok2 := strings.Cut(strings.TrimSpace(head), " until ")
	if !ok || !ok2 {
		return Waiver{}, fmt.Errorf("waiver %q: write RULE until YYYY-MM-DD: reason, e.g. \"login-umask until 2027-03-31: the build farm needs 022\"", s)
	}
	w := Waiver{Rule: strings.TrimSpace(rule), Expires: strings.TrimSpace(date), Reason: strings.TrimSpace(reason)}
	if _, err := lockdown.ParseWaiver(w.Rule, w.Reason, w.Expires); err != nil {
		return Waiver{}, err
	}
	return w, nil
}
