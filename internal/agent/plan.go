package agent

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/approval"
	"github.com/bulwarkhq/bulwark/internal/catalog"
)

// State is an update's state on this machine, in the vocabulary WSUS admins
// know. These are the only states the agent reports; the reason says more
// (a removed update is not-applicable "uninstalled as the site approved", one
// outside its rollout is needed "waiting for its staged rollout").
type State string

// The states.
const (
	StateNotApplicable State = "not-applicable"
	StateNeeded        State = "needed"
	StateDownloaded    State = "downloaded"
	StateInstalled     State = "installed"
	StatePendingReboot State = "installed-pending-reboot"
	StateFailed        State = "failed"
	StateSuperseded    State = "superseded"
	StateDeclined      State = "declined"
	StateUnknown       State = "unknown"
)

// Candidate is one approved update with its verified vendor metadata.
type Candidate struct {
	Vendor   string
	Approval approval.Approval
	Update   *catalog.Update
}

// Key names an update across vendors.
func (c Candidate) Key() string { return c.Vendor + "/" + c.Update.ID }

// Step is one update the pass acts on.
type Step struct {
	Candidate
	Uninstall bool
	Action    Action
}

// Decision is what the plan says about one candidate that no step acts on,
// or the state a step starts from.
type Decision struct {
	State  State
	Reason string
}

// Plan is the result of deciding: the steps in the order the pass runs them
// (every update after what it requires), and a decision for every candidate.
type Plan struct {
	Steps     []Step
	Decisions map[string]Decision // by Candidate.Key()
}

// Inputs of a plan besides the candidates.
type PlanInput struct {
	AgentID   string
	Facts     catalog.Facts
	Installed map[string]bool // keys of updates this agent installed
	Policy    Policy
	Now       time.Time
	Asked     map[string]bool // keys a person asked to install now; "*" for all
}

// BuildPlan decides, for every approved update, whether this machine needs
// it and what to do now: declined and withdrawn updates are left alone,
// updates outside the rollout percentage wait, inapplicable ones are not
// applicable, an update superseded by an approved rollup that applies is
// skipped, and what remains is ordered so that every update comes after the
// updates it requires.
func BuildPlan(cands []Candidate, in PlanInput) (*Plan, error) {
	p := &Plan{Decisions: map[string]Decision{}}
	byID := map[string]Candidate{}
	for _, c := range cands {
		byID[c.Update.ID] = c
	}
	decide := func(c Candidate, s State, why string) { p.Decisions[c.Key()] = Decision{s, why} }

	// First pass: what each candidate is, ignoring the others. For a deb
	// update whose payloads name their packages, what dpkg says now
	// decides as well as applies_to: it applies while one of its packages
	// is installed at an older version than its payload (or is missing
	// where the update adds it), so a half-installed update is retried;
	// one whose packages are all current is installed, whatever this
	// agent remembers.
	active := map[string]Candidate{} // wants installing
	current := map[string]bool{}     // deb updates whose packages are all current
	for _, c := range cands {
		k := c.Key()
		pkgs, perr := c.Update.Packages(in.Facts)
		if perr == nil && pkgs.Current() {
			current[k] = true
		}
		stale := perr == nil && pkgs.Present && len(pkgs.Outdated) > 0
		switch {
		case c.Approval.Action == approval.ActionDecline:
			decide(c, StateDeclined, "declined by the site")
			continue
		case c.Update.Withdrawn:
			decide(c, StateNotApplicable, "withdrawn by the vendor")
			continue
		case c.Approval.Action == approval.ActionUninstall:
			if !in.Installed[k] {
				decide(c, StateNotApplicable, "approved for removal but not installed")
			} else if !c.Update.Uninstallable {
				decide(c, StateInstalled, "approved for removal, but the vendor marks it not uninstallable")
			} else {
				decide(c, StateInstalled, "to be removed")
				p.Steps = append(p.Steps, Step{Candidate: c, Uninstall: true, Action: ActionInstall})
			}
			continue
		case in.Installed[k] && !stale:
			decide(c, StateInstalled, "")
			continue
		}
		ok, err := c.Update.Applicable(in.Facts)
		if err == nil {
			err = perr
		}
		if err != nil {
			decide(c, StateUnknown, fmt.Sprintf("applicability could not be evaluated: %v", err))
			continue
		}
		why := ""
		switch {
		case stale && c.Update.PlatformApplicable(in.Facts):
			ok = true
			why = "not current: " + strings.Join(pkgs.Outdated, ", ")
		case ok && pkgs.Current():
			decide(c, StateInstalled, "its packages are already at the payload versions or newer")
			continue
		}
		if !ok {
			decide(c, StateNotApplicable, "")
			continue
		}
		if !InRollout(in.AgentID, c.Vendor, c.Update.ID, c.Approval.Rollout) && !(c.Approval.Deadline != nil && !in.Now.Before(*c.Approval.Deadline)) {
			decide(c, StateNeeded, fmt.Sprintf("waiting for its staged rollout: outside the first %d%% of the group", c.Approval.Rollout))
			continue
		}
		decide(c, StateNeeded, why)
		active[k] = c
	}

	// Supersedence: a rollup that is installed or about to be replaces what
	// it lists.
	for _, c := range cands {
		if _, ok := active[c.Key()]; !ok && !in.Installed[c.Key()] {
			continue
		}
		for _, old := range c.Update.Supersedes {
			if o, ok := byID[old]; ok && o.Vendor == c.Vendor {
				if _, isActive := active[o.Key()]; isActive {
					delete(active, o.Key())
					decide(o, StateSuperseded, "superseded by "+c.Update.ID)
				}
			}
		}
	}

	// Requirements, then order.
	var keys []string
	for k := range active {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	changed := true
	for changed {
		changed = false
		for _, k := range keys {
			c, ok := active[k]
			if !ok {
				continue
			}
			for _, req := range c.Update.Requires {
				rk := c.Vendor + "/" + req
				if (in.Installed[rk] && !stalePkgs(byID[req], in.Facts)) || current[rk] {
					continue
				}
				if _, ok := active[rk]; ok {
					continue
				}
				why := fmt.Sprintf("requires %s, which is not approved for this group", req)
				if d, ok := p.Decisions[rk]; ok {
					why = fmt.Sprintf("requires %s, which is %s", req, d.State)
				}
				delete(active, k)
				decide(c, StateFailed, why)
				changed = true
				break
			}
		}
	}
	order, err := topoOrder(active)
	if err != nil {
		return nil, err
	}
	for _, k := range order {
		c := active[k]
		act := in.Policy.Decide(c.Approval, c.Update, in.Now, in.Asked["*"] || in.Asked[k])
		p.Steps = append(p.Steps, Step{Candidate: c, Action: act})
	}
	return p, nil
}

// stalePkgs reports whether c is a deb update one of whose packages dpkg
// has at an older version than its payload.
func stalePkgs(c Candidate, f catalog.Facts) bool {
	if c.Update == nil {
		return false
	}
	st, err := c.Update.Packages(f)
	return err == nil && st.Present && len(st.Outdated) > 0
}

// topoOrder orders the active updates so each comes after what it requires,
// breaking ties by key so that the order is the same every time.
func topoOrder(active map[string]Candidate) ([]string, error) {
	indeg := map[string]int{}
	next := map[string][]string{}
	for k, c := range active {
		indeg[k] += 0
		for _, req := range c.Update.Requires {
			rk := c.Vendor + "/" + req
			if _, ok := active[rk]; ok {
				indeg[k]++
				next[rk] = append(next[rk], k)
			}
		}
	}
	var ready, out []string
	for k, d := range indeg {
		if d == 0 {
			ready = append(ready, k)
		}
	}
	for len(ready) > 0 {
		sort.Strings(ready)
		k := ready[0]
		ready = ready[1:]
		out = append(out, k)
		for _, n := range next[k] {
			indeg[n]--
			if indeg[n] == 0 {
				ready = append(ready, n)
			}
		}
	}
	if len(out) != len(active) {
		var cycle []string
		for k, d := range indeg {
			if d > 0 {
				cycle = append(cycle, k)
			}
		}
		sort.Strings(cycle)
		return nil, fmt.Errorf("updates require each other in a cycle: %s", strings.Join(cycle, ", "))
	}
	return out, nil
}
