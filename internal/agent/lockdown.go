package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/bulwarkhq/bulwark/internal/atomicfile"
	"github.com/bulwarkhq/bulwark/internal/install"
	"github.com/bulwarkhq/bulwark/internal/lockdown"
	"github.com/bulwarkhq/bulwark/internal/lockdown/audit"
	"github.com/bulwarkhq/bulwark/internal/wire"
)

// Lockdown sources: why the agent audits a profile.
const (
	LockdownFromPolicy = "policy" // the group's policy keeps it applied
	LockdownFromConfig = "config" // agent.yaml names it: audit only
	LockdownFromUpdate = "update" // a lockdown update applied it: audit only
)

// LockdownSetting is the lockdown profile the agent looks after.
type LockdownSetting struct {
	Profile string
	Source  string
	// Apply keeps the profile applied: after enrollment, when the profile
	// or its waivers change, and for rules an install brought into scope.
	Apply bool
	// Waivers are the site's: waived rules are neither applied nor
	// counted as failing.
	Waivers []lockdown.Waiver
}

// lockdownStateFile, in the state directory, remembers the agent's last
// apply and the last audit, for drift and for what an install brought into
// scope.
const lockdownStateFile = "lockdown.json"

type lockdownState struct {
	Profile   string     `json:"profile"`
	Waivers   string     `json:"waivers"` // fingerprint of the waivers applied with
	AppliedAt *time.Time `json:"applied_at,omitempty"`
	Runs      []string   `json:"runs,omitempty"` // journal runs of the applies (undo)
	// Passed are the rules passing after the last apply (drift is one of
	// them failing); OutOfScope were not applicable then (an install may
	// bring them into scope).
	Passed     []string `json:"passed"`
	OutOfScope []string `json:"out_of_scope"`
	// LastPassed are the rules passing at the last audit: the drift
	// baseline when the agent does not apply the profile itself.
	LastPassed []string `json:"last_passed"`
}

func (a *Agent) loadLockdownState() lockdownState {
	var st lockdownState
	b, err := os.ReadFile(filepath.Join(a.cfg.StateDir, lockdownStateFile))
	if err == nil {
		if err := json.Unmarshal(b, &st); err != nil {
			a.log.Warn("lockdown state unreadable; starting afresh", "file", lockdownStateFile, "err", err)
			st = lockdownState{}
		}
	}
	return st
}

func (a *Agent) saveLockdownState(st lockdownState) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(a.cfg.StateDir, lockdownStateFile), append(b, '\n'), 0o600)
}

func waiverPrint(ws []lockdown.Waiver) string {
	b, _ := json.Marshal(ws)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:8])
}

func idsWith(rep *lockdown.Report, keep func(lockdown.Result) bool) []string {
	var ids []string
	for _, r := range rep.Results {
		if keep(r.Result) {
			ids = append(ids, r.ID)
		}
	}
	return ids
}

func passing(r lockdown.Result) bool    { return r == lockdown.ResultPass || r == lockdown.ResultFixed }
func outOfScope(r lockdown.Result) bool { return r == lockdown.ResultNotApplicable }

func idSet(ids []string) map[string]bool {
	m := make(map[string]bool, len(ids))
	for _, id := range ids {
		m[id] = true
	}
	return m
}

// LockdownSettingFor is the setting the agent follows: the group policy's
// profile when it names one, else agent.yaml's lockdown_profile, else the
// profile of the lockdown update installed last; ok is false when none.
func LockdownSettingFor(policy *LockdownSetting, configProfile, stateDir string) (LockdownSetting, bool) {
	switch {
	case policy != nil && policy.Profile != "":
		return *policy, true
	case configProfile != "":
		return LockdownSetting{Profile: configProfile, Source: LockdownFromConfig}, true
	}
	if p, _, ok := install.LastLockdown(filepath.Join(stateDir, "installed")); ok {
		return LockdownSetting{Profile: p, Source: LockdownFromUpdate}, true
	}
	return LockdownSetting{}, false
}

// Lockdown looks after the lockdown profile once (each cycle): it applies
// it when the setting keeps it applied and the machine has not had it
// (first cycle after enrollment, a new profile or new waivers), applies the
// rules an install brought into scope since, then audits and returns what
// to report. Drift (rules that passed after the last apply and fail now)
// is reported, not overwritten: an admin sees it and decides. A profile
// that cannot be selected, or an apply that fails, is reported as the
// audit's error.
func (a *Agent) Lockdown(ctx context.Context, set LockdownSetting) (*wire.LockdownAudit, error) {
	now := a.cfg.Now()
	fail := func(err error) *wire.LockdownAudit {
		return &wire.LockdownAudit{Profile: set.Profile, Source: set.Source, AuditedAt: now.UTC(), Rules: []wire.LockdownAuditRule{}, Error: oneLine(err.Error())}
	}
	cat, err := lockdown.LoadCatalog()
	if err != nil {
		return nil, err
	}
	sel, err := cat.Select(set.Profile, now)
	if err != nil {
		return fail(err), nil
	}
	if err := sel.Waive(set.Waivers, now); err != nil {
		return fail(err), nil
	}
	cmd := a.cfg.LockdownCommander
	if cmd == nil {
		cmd = lockdown.ExecCommander{}
	}
	eng := lockdown.NewEngine(a.log.With("lockdown", set.Profile), a.cfg.Now, cmd)
	rep, err := eng.Audit(ctx, sel, a.cfg.Root)
	if err != nil {
		return nil, err
	}
	st := a.loadLockdownState()
	var applyErr error
	if set.Apply {
		fp := waiverPrint(set.Waivers)
		var only map[string]bool // nil: the whole profile
		if st.Profile == set.Profile && st.Waivers == fp && st.AppliedAt != nil {
			// Applied before: only the rules out of scope then that fail
			// now (an install brought their service), and rules this
			// agent's release added to the profile.
			known := idSet(append(slices.Clone(st.Passed), st.OutOfScope...))
			was := idSet(st.OutOfScope)
			only = map[string]bool{}
			for _, r := range rep.Results {
				if r.Result == lockdown.ResultFail && r.Waiver == nil && (was[r.ID] || !known[r.ID]) {
					only[r.ID] = true
				}
			}
		}
		if only == nil || len(only) > 0 {
			rep, applyErr = a.applyLockdown(ctx, eng, sel, only, &st, fp, now)
		}
	}
	baseline := idSet(st.LastPassed)
	if st.AppliedAt != nil && st.Profile == set.Profile {
		baseline = idSet(st.Passed)
	}
	var appliedAt *time.Time
	if st.Profile == set.Profile {
		appliedAt = st.AppliedAt
	}
	c := audit.Of(rep, set.Source, appliedAt, baseline)
	if applyErr != nil {
		c.Error = oneLine("apply: " + applyErr.Error())
	}
	st.LastPassed = idsWith(rep, passing)
	if set.Source != LockdownFromPolicy && st.Profile != set.Profile {
		st.Profile, st.AppliedAt, st.Passed, st.OutOfScope = set.Profile, nil, nil, nil
	}
	if err := a.saveLockdownState(st); err != nil {
		return nil, err
	}
	return c, nil
}

// applyLockdown applies the selection (only the rules in only, when not
// nil), records the apply in st and returns a fresh audit.
func (a *Agent) applyLockdown(ctx context.Context, eng *lockdown.Engine, sel *lockdown.Selection, only map[string]bool, st *lockdownState, fp string, now time.Time) (*lockdown.Report, error) {
	part := sel
	if only != nil {
		part = &lockdown.Selection{Profile: sel.Profile}
		for _, r := range sel.Rules {
			if only[r.Rule.ID] {
				part.Rules = append(part.Rules, r)
			}
		}
		a.log.Info("lockdown: applying rules an install brought into scope", "profile", sel.Profile.Name, "rules", len(part.Rules))
	} else {
		a.log.Info("lockdown: applying the profile the group's policy names", "profile", sel.Profile.Name)
	}
	ap, err := eng.Apply(ctx, part, a.cfg.Root, lockdown.ApplyOptions{StateDir: filepath.Join(a.cfg.StateDir, "lockdown")})
	if ap != nil && ap.Run != "" {
		st.Runs = append(st.Runs, ap.Run)
		if n := len(st.Runs); n > 50 {
			st.Runs = st.Runs[n-50:]
		}
	}
	rep, aerr := eng.Audit(ctx, sel, a.cfg.Root)
	if aerr != nil {
		return nil, errors.Join(err, aerr)
	}
	if err != nil {
		return rep, err
	}
	t := now.UTC()
	st.Profile, st.Waivers, st.AppliedAt = sel.Profile.Name, fp, &t
	passed := idsWith(rep, passing)
	if only != nil {
		// A partial apply: the baseline keeps what passed after the full
		// one (a drifted rule stays drift) and gains what it applied.
		passed = append(slices.DeleteFunc(passed, func(id string) bool { return !only[id] }), st.Passed...)
		slices.Sort(passed)
		passed = slices.Compact(passed)
	}
	st.Passed, st.OutOfScope = passed, idsWith(rep, outOfScope)
	if ap.Reboot {
		a.log.Warn("lockdown: a rule applied takes full effect after a reboot", "profile", sel.Profile.Name)
	}
	return rep, nil
}

func oneLine(s string) string {
	b := []rune(s)
	for i, r := range b {
		if r == '\n' || r == '\r' || r == 0 {
			b[i] = ' '
		}
	}
	if len(b) > 900 {
		b = append(b[:900], '…')
	}
	return string(b)
}
