package lockdown

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Engine audits, applies and undoes profiles.
type Engine struct {
	log      *slog.Logger
	now      func() time.Time
	cmd      Commander
	liveRoot string
	prober   Prober
}

// EngineOption changes a default of NewEngine.
type EngineOption func(*Engine)

// WithLiveRoot makes root, instead of "/", the running system: values in
// force are read through p, validators run without chroot, and apply and
// undo reload services through the Commander. It exists so that tests can
// exercise the running-system path on a scratch tree with a fake Prober,
// since they must not change the machine they run on.
func WithLiveRoot(root string, p Prober) EngineOption {
	return func(e *Engine) { e.liveRoot, e.prober = filepath.Clean(root), p }
}

// NewEngine returns an Engine. now is the clock (waivers expire against it)
// and cmd runs validators and reloads.
func NewEngine(log *slog.Logger, now func() time.Time, cmd Commander, opts ...EngineOption) *Engine {
	e := &Engine{log: log, now: now, cmd: cmd, liveRoot: "/", prober: SystemProber{Cmd: cmd}}
	for _, o := range opts {
		o(e)
	}
	return e
}

// live reports whether t is the running system.
func (e *Engine) live(t *Tree) bool { return t.Root() == e.liveRoot }

// RuleResult is one rule's line in a report.
type RuleResult struct {
	ID          string     `json:"id"`
	Title       string     `json:"title"`
	Severity    Severity   `json:"severity"`
	Disruption  Disruption `json:"disruption"`
	Rationale   string     `json:"rationale"`
	References  References `json:"references"`
	Type        string     `json:"type"`
	Description string     `json:"description"`
	Verdict
	// Before is the verdict before an apply.
	Before        Result  `json:"before,omitempty"`
	Waiver        *Waiver `json:"waiver,omitempty"`
	ExpiredWaiver *Waiver `json:"expired_waiver,omitempty"`
	Reboot        bool    `json:"reboot,omitempty"`
	// Note says why a failing rule was not applied, or what it needs.
	Note string `json:"note,omitempty"`
}

// Report is the outcome of an audit or apply.
type Report struct {
	Kind    string         `json:"kind"` // audit, apply, dry-run
	Profile string         `json:"profile"`
	Root    string         `json:"root"`
	Time    time.Time      `json:"time"`
	Run     string         `json:"run,omitempty"`
	Results []RuleResult   `json:"results"`
	Counts  map[Result]int `json:"counts"`
	// Score is the severity-weighted share of checked rules that pass (or
	// were fixed, or are waived), 0-100.
	Score   float64  `json:"score"`
	Changes []Change `json:"changes,omitempty"`
	Notes   []string `json:"notes,omitempty"`
	Reboot  bool     `json:"reboot_needed,omitempty"`
}

// Label is the result as reports show and count it: a failing rule the
// profile waives is "waived", not "fail".
func (r RuleResult) Label() Result {
	if r.Waiver != nil && r.Result == ResultFail {
		return ResultWaived
	}
	return r.Result
}

// Failed counts the failures that are not waived, and errors.
func (r *Report) Failed() int {
	n := 0
	for _, res := range r.Results {
		if (res.Result == ResultFail && res.Waiver == nil) || res.Result == ResultError {
			n++
		}
	}
	return n
}

func (e *Engine) env(t *Tree) *Env {
	env := &Env{Tree: t, Cmd: e.cmd}
	if e.live(t) {
		env.Live = e.prober
	}
	return env
}

// Audit checks every rule of the selection against root.
func (e *Engine) Audit(ctx context.Context, sel *Selection, root string) (*Report, error) {
	t, err := NewTree(root)
	if err != nil {
		return nil, err
	}
	rep := e.newReport("audit", sel, t)
	env := e.env(t)
	for _, s := range sel.Rules {
		rep.Results = append(rep.Results, result(s, s.Resource.Check(ctx, env)))
	}
	rep.finish()
	return rep, nil
}

func (e *Engine) newReport(kind string, sel *Selection, t *Tree) *Report {
	return &Report{Kind: kind, Profile: sel.Profile.Name, Root: t.Root(), Time: e.now().UTC()}
}

func result(s Selected, v Verdict) RuleResult {
	return RuleResult{
		ID: s.Rule.ID, Title: s.Rule.Title, Severity: s.Rule.Severity, Disruption: s.Rule.Disruption,
		Rationale: strings.TrimSpace(s.Rule.Rationale), References: s.Rule.References, Type: s.Rule.Type,
		Description: s.Resource.Describe(), Verdict: v, Waiver: s.Waiver, ExpiredWaiver: s.ExpiredWaiver,
		Reboot: s.Rule.Reboot,
	}
}

func (r *Report) finish() {
	r.Counts = map[Result]int{}
	good, total := 0, 0
	for _, res := range r.Results {
		r.Counts[res.Label()]++
		w := res.Severity.Weight()
		switch res.Result {
		case ResultPass, ResultFixed:
			good += w
			total += w
		case ResultFail, ResultError:
			total += w
			if res.Waiver != nil && res.Result == ResultFail {
				good += w
			}
		}
	}
	if total > 0 {
		r.Score = float64(int(1000*float64(good)/float64(total)+0.5)) / 10
	} else {
		r.Score = 100
	}
}

// ApplyOptions controls an apply.
type ApplyOptions struct {
	// StateDir is the journal directory.
	StateDir string
	// DryRun only plans and reports the exact changes.
	DryRun bool
	// Force applies rules that would lock out the current session.
	Force bool
	// Session is the login apply runs in (see DetectSession).
	Session Session
	// Confirm is asked with the planned changes before anything is written;
	// nil means yes.
	Confirm func(changes []Change) (bool, error)
	// ConfirmInstall is asked, after Confirm, with the packages package
	// rules would install; nil means yes.
	ConfirmInstall func(packages []string) (bool, error)
	// AfterChange is called after each journaled change is made (for
	// progress, and for crash tests).
	AfterChange func(n int, c Change)
}

// ErrDeclined is returned when Confirm said no.
var ErrDeclined = errors.New("apply declined: nothing was changed")

// ValidationError is a configuration that failed its validator after the
// changes were written; they have been rolled back.
type ValidationError struct {
	Run       string
	Validator string
	Output    string
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("%s rejected the new configuration, so run %s was rolled back and nothing is changed: %s", e.Validator, e.Run, e.Output)
}

// Apply makes the failing rules of the selection pass. It plans every change
// in memory, asks, journals each path's prior state before changing it,
// validates the result (sshd -t, nginx -t) and rolls everything back if
// that fails, then reloads what the rules name when root is "/".
func (e *Engine) Apply(ctx context.Context, sel *Selection, root string, opts ApplyOptions) (*Report, error) {
	t, err := NewTree(root)
	if err != nil {
		return nil, err
	}
	kind := "apply"
	if opts.DryRun {
		kind = "dry-run"
	}
	rep, applied, err := e.plan(ctx, sel, t, kind, opts)
	if err != nil {
		return nil, err
	}
	installs := t.Installs()
	changes, err := t.Changes()
	if err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	rep.Changes = changes
	if err := e.verifyPlan(ctx, sel, rep, t, opts.DryRun); err != nil {
		return nil, err
	}
	if len(installs) > 0 {
		verb := "install: "
		if opts.DryRun {
			verb = "would install (with the root's apt-get, no recommends): "
		}
		rep.Notes = append(rep.Notes, verb+strings.Join(installs, " "))
	}
	if opts.DryRun || len(changes) == 0 && len(installs) == 0 {
		if len(changes) == 0 && !opts.DryRun {
			rep.Notes = append(rep.Notes, "nothing to change")
		}
		rep.finish()
		return rep, nil
	}
	if opts.Confirm != nil && len(changes) > 0 {
		ok, err := opts.Confirm(changes)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, ErrDeclined
		}
	}
	if opts.ConfirmInstall != nil && len(installs) > 0 {
		ok, err := opts.ConfirmInstall(installs)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, ErrDeclined
		}
	}
	j, err := OpenJournal(opts.StateDir)
	if err != nil {
		return nil, err
	}
	unlock, err := j.Lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	ids := make([]string, 0, len(applied))
	for _, s := range applied {
		ids = append(ids, s.Rule.ID)
	}
	w, err := j.Begin(t.Root(), sel.Profile.Name, ids, e.now())
	if err != nil {
		return nil, err
	}
	rep.Run = w.ID()
	log := e.log.With("run", w.ID(), "root", t.Root())
	if len(installs) > 0 {
		// Packages first: their files are then on disk, and the file
		// rules are planned again over them (a rule for a package's
		// configuration applies in the same run).
		if err := w.SetPackages(installs, nil); err != nil {
			return nil, err
		}
		if err := w.SavePackagesBefore(t.Root()); err != nil {
			return nil, err
		}
		added, ierr := installPackages(ctx, e.cmd, t.Root(), installs)
		if err := w.SetPackages(installs, added); err != nil {
			return nil, err
		}
		if ierr != nil {
			log.Error("install failed; rolling back", "err", ierr)
			if _, uerr := e.undoRun(ctx, j, w.ID(), true); uerr != nil {
				return nil, fmt.Errorf("apply: %w; rolling back also failed: %v (run `bulwark lockdown undo %s`)", ierr, uerr, w.ID())
			}
			_ = j.setStatus(w.ID(), StatusRolledBack, e.now())
			return nil, fmt.Errorf("apply: %w; the packages it installed were purged", ierr)
		}
		rep.Notes = append(rep.Notes, fmt.Sprintf("installed %d packages: %s", len(added), strings.Join(added, " ")))
		if t, err = NewTree(root); err != nil {
			return nil, err
		}
		replan, replanned, err := e.plan(ctx, sel, t, kind, opts)
		if err != nil {
			if _, uerr := e.undoRun(ctx, j, w.ID(), true); uerr != nil {
				return nil, fmt.Errorf("%w; rolling back also failed: %v (run `bulwark lockdown undo %s`)", err, uerr, w.ID())
			}
			_ = j.setStatus(w.ID(), StatusRolledBack, e.now())
			return nil, fmt.Errorf("%w; the packages installed were purged", err)
		}
		for i := range replan.Results {
			if _, ok := sel.Rules[i].Resource.(*PackageInstalled); ok {
				replan.Results[i].Before = rep.Results[i].Before
				replan.Results[i].Implicit = rep.Results[i].Implicit
			}
		}
		replan.Notes = rep.Notes
		replan.Run = rep.Run
		rep, applied = replan, append(replanned, installedRules(sel, rep)...)
		if changes, err = t.Changes(); err != nil {
			return nil, fmt.Errorf("plan: %w", err)
		}
		rep.Changes = changes
		if err := e.verifyPlan(ctx, sel, rep, t, false); err != nil {
			if _, uerr := e.undoRun(ctx, j, w.ID(), true); uerr != nil {
				return nil, fmt.Errorf("%w; rolling back also failed: %v (run `bulwark lockdown undo %s`)", err, uerr, w.ID())
			}
			_ = j.setStatus(w.ID(), StatusRolledBack, e.now())
			return nil, err
		}
	}
	if err := e.commit(t, w, changes, opts.AfterChange); err != nil {
		log.Error("apply failed; rolling back", "err", err)
		if _, uerr := e.undoRun(ctx, j, w.ID(), true); uerr != nil {
			return nil, fmt.Errorf("apply: %w; rolling back also failed: %v (run `bulwark lockdown undo %s`)", err, uerr, w.ID())
		}
		_ = j.setStatus(w.ID(), StatusRolledBack, e.now())
		return nil, fmt.Errorf("apply: %w; the changes made were rolled back", err)
	}
	if verr := e.validate(ctx, t, changes, &rep.Notes); verr != nil {
		verr.Run = w.ID()
		if _, uerr := e.undoRun(ctx, j, w.ID(), true); uerr != nil {
			return nil, fmt.Errorf("%w; rolling back also failed: %v (run `bulwark lockdown undo %s`)", verr, uerr, w.ID())
		}
		_ = j.setStatus(w.ID(), StatusRolledBack, e.now())
		return nil, verr
	}
	if e.live(t) {
		if err := e.reload(ctx, applied, w, &rep.Notes); err != nil {
			log.Warn("reload", "err", err)
			rep.Notes = append(rep.Notes, "reload: "+err.Error())
		}
	}
	if err := w.Finish(StatusApplied, e.now()); err != nil {
		return nil, err
	}
	// Check again, from the disk (and the running system).
	t2, err := NewTree(root)
	if err != nil {
		return nil, err
	}
	env2 := e.env(t2)
	for i, s := range sel.Rules {
		if !wasStaged(rep.Results[i], s) {
			continue
		}
		v := s.Resource.Check(ctx, env2)
		before := rep.Results[i].Before
		if v.Result == ResultPass && before == ResultFail {
			v.Result = ResultFixed
		}
		if before == ResultPass {
			rep.Results[i].Note = "written down (passed on a compiled-in default)"
		}
		rep.Results[i].Verdict = v
		rep.Results[i].Before = before
		if s.Rule.Reboot {
			rep.Reboot = true
		}
	}
	log.Info("applied", "profile", sel.Profile.Name, "rules", len(applied), "changes", len(changes))
	rep.finish()
	return rep, nil
}

// plan checks every rule against t and stages the changes of those that
// fail (Apply), returning the report so far and the rules staged.
func (e *Engine) plan(ctx context.Context, sel *Selection, t *Tree, kind string, opts ApplyOptions) (*Report, []Selected, error) {
	rep := e.newReport(kind, sel, t)
	env := e.env(t)
	refused := map[string]string{}
	var applied []Selected
	// Every verdict is taken before anything is staged, so that the report
	// (file:line included) describes the files as they are on disk.
	before := make([]Verdict, len(sel.Rules))
	for i, s := range sel.Rules {
		before[i] = s.Resource.Check(ctx, env)
	}
	for i, s := range sel.Rules {
		v := before[i]
		res := result(s, v)
		res.Before = v.Result
		if needsApply(v) {
			switch {
			case s.Waiver != nil:
				res.Note = "waived: " + s.Waiver.Reason
			default:
				if r, ok := s.Resource.(SessionRisker); ok && !opts.Force {
					if why := r.SessionRisk(opts.Session); why != "" {
						refused[s.Rule.ID] = why
					}
				}
				if err := s.Resource.Apply(ctx, env); errors.Is(err, ErrManual) {
					res.Note = err.Error()
				} else if err != nil {
					return nil, nil, fmt.Errorf("plan rule %s: %w", s.Rule.ID, err)
				} else {
					applied = append(applied, s)
				}
			}
		}
		rep.Results = append(rep.Results, res)
	}
	if len(refused) > 0 {
		return nil, nil, &RefusedError{Reasons: refused}
	}
	return rep, applied, nil
}

// verifyPlan checks that every staged change makes its rule pass with the
// value written down (packages, installed later, are not checked here).
func (e *Engine) verifyPlan(ctx context.Context, sel *Selection, rep *Report, t *Tree, dryRun bool) error {
	planned := &Env{Tree: t}
	for i := range rep.Results {
		s := sel.Rules[i]
		if !wasStaged(rep.Results[i], s) {
			continue
		}
		if _, ok := s.Resource.(*PackageInstalled); ok {
			if dryRun {
				rep.Results[i].Note = "would be installed"
			}
			continue
		}
		v := s.Resource.Check(ctx, planned)
		if v.Result != ResultPass || v.Implicit {
			return fmt.Errorf("rule %s: its change would not make it pass with the value written down (%s, actual %q at %s); nothing was changed", s.Rule.ID, v.Result, v.Actual, v.Where)
		}
		if dryRun {
			rep.Results[i].Note = "would be fixed"
			if rep.Results[i].Before == ResultPass {
				rep.Results[i].Note = "passes on a default; would be written down"
			}
		}
	}
	return nil
}

// installedRules are the package rules the first plan staged.
func installedRules(sel *Selection, rep *Report) []Selected {
	var out []Selected
	for i, s := range sel.Rules {
		if _, ok := s.Resource.(*PackageInstalled); ok && wasStaged(rep.Results[i], s) {
			out = append(out, s)
		}
	}
	return out
}

// undoRun restores the files of a run, then purges the packages it
// installed (their configuration files were written after them).
func (e *Engine) undoRun(ctx context.Context, j *Journal, id string, force bool) (*UndoResult, error) {
	rec, err := j.Run(id)
	if err != nil {
		return nil, err
	}
	res, err := j.undo(id, force, e.now())
	if err != nil {
		return nil, err
	}
	root := rec.Root
	if rec.InRoot {
		root = rootOfStateDir(j.dir)
	}
	installed := rec.Installed
	if len(installed) == 0 && len(rec.Packages) > 0 {
		// Killed while apt-get ran: what is installed now and was not
		// before the run.
		if installed, err = j.interruptedInstall(id, root); err != nil {
			return res, fmt.Errorf("undo run %s: the files are restored, but finding the packages it installed: %w", id, err)
		}
	}
	if len(installed) > 0 {
		purged, err := purgePackages(ctx, e.cmd, root, installed)
		res.Purged = purged
		if err != nil {
			return res, fmt.Errorf("undo run %s: the files are restored, but %w; purge them by hand", id, err)
		}
		if err := j.restoreTimes(id, root); err != nil {
			return res, fmt.Errorf("undo run %s: packages purged, but restoring modification times: %w", id, err)
		}
	}
	return res, nil
}

// needsApply reports whether a verdict calls for a change: the rule fails,
// or it passes only on a compiled-in default that no file states.
func needsApply(v Verdict) bool {
	return v.Result == ResultFail || v.Result == ResultPass && v.Implicit
}

// wasStaged reports whether apply staged a change for the rule of res.
func wasStaged(res RuleResult, s Selected) bool {
	return (res.Before == ResultFail || res.Before == ResultPass && res.Implicit) && s.Waiver == nil && res.Note == ""
}

// commit journals and makes each change, creating missing parent
// directories (also journaled).
func (e *Engine) commit(t *Tree, w *RunWriter, changes []Change, after func(int, Change)) error {
	n := 0
	for _, c := range changes {
		if err := w.NoteDir(path.Dir(c.Path), t.host(path.Dir(c.Path))); err != nil {
			return err
		}
		if c.After.Exists() {
			var missing []string
			for d := path.Dir(c.Path); d != "/"; d = path.Dir(d) {
				st, err := diskState(t.host(d), false)
				if err != nil {
					return err
				}
				if st.Exists() {
					break
				}
				missing = append(missing, d)
			}
			if len(missing) > 0 {
				top := path.Dir(missing[len(missing)-1])
				if err := w.NoteDir(top, t.host(top)); err != nil {
					return err
				}
			}
			for i := len(missing) - 1; i >= 0; i-- {
				d := missing[i]
				st := State{Kind: KindDir, Mode: 0o755}
				if err := w.Record(d, State{Kind: KindNone}, st, t.host(d)); err != nil {
					return err
				}
				if err := setState(t.host(d), st, nil); err != nil {
					return fmt.Errorf("create %s: %w", d, err)
				}
			}
		}
		if err := w.Record(c.Path, c.Before, c.After, t.host(c.Path)); err != nil {
			return err
		}
		data := c.data
		if c.After.Kind == KindFile && c.Before.Kind == KindFile && c.Before.SHA256 == c.After.SHA256 {
			data = nil // metadata only
		}
		if err := setState(t.host(c.Path), c.After, data); err != nil {
			return fmt.Errorf("change %s: %w", c.Path, err)
		}
		n++
		if after != nil {
			after(n, c)
		}
	}
	return nil
}

// validate runs sshd -t and nginx -t when their configuration changed. On a
// root other than "/" they run chrooted into it, in a private mount
// namespace with a fresh /run, when this process may do that.
func (e *Engine) validate(ctx context.Context, t *Tree, changes []Change, notes *[]string) *ValidationError {
	touched := func(prefix string) bool {
		for _, c := range changes {
			if strings.HasPrefix(c.Path, prefix) {
				return true
			}
		}
		return false
	}
	type validator struct {
		prefix, bin string
		args        []string
	}
	for _, v := range []validator{
		{"/etc/ssh/", "/usr/sbin/sshd", []string{"-t"}},
		{"/etc/nginx/", "/usr/sbin/nginx", []string{"-t", "-q"}},
		{"/etc/sudoers", "/usr/sbin/visudo", []string{"-c", "-q"}},
	} {
		if !touched(v.prefix) {
			continue
		}
		name := path.Base(v.bin) + " " + strings.Join(v.args, " ")
		var err error
		switch {
		case e.live(t):
			_, err = e.cmd.Run(ctx, v.bin, v.args...)
		case os.Geteuid() == 0 && fileExists(filepath.Join(t.Root(), v.bin)):
			script := `mount -t tmpfs bulwark-run "$1/run" && mkdir -p "$1/run/sshd" && root="$1" && shift && exec chroot "$root" "$@"`
			args := append([]string{"--mount", "--propagation", "private", "sh", "-c", script, "sh", t.Root(), v.bin}, v.args...)
			_, err = e.cmd.Run(ctx, "unshare", args...)
		default:
			*notes = append(*notes, fmt.Sprintf("%s not run: it needs root and %s inside the root", name, v.bin))
			continue
		}
		if err != nil {
			return &ValidationError{Validator: name, Output: err.Error()}
		}
		*notes = append(*notes, name+": ok")
	}
	return nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// reload makes the running system use the new configuration.
func (e *Engine) reload(ctx context.Context, applied []Selected, w *RunWriter, notes *[]string) error {
	reloads := map[string]bool{}
	var units []string
	for _, s := range applied {
		reloads[s.Rule.Reload] = true
		if u, ok := s.Resource.(interface{ UnitName() string }); ok {
			units = append(units, u.UnitName())
		}
	}
	var errs []error
	run := func(name string, args ...string) {
		if _, err := e.cmd.Run(ctx, name, args...); err != nil {
			errs = append(errs, err)
		} else {
			*notes = append(*notes, name+" "+strings.Join(args, " "))
		}
	}
	if reloads["sysctl"] {
		// Keep the values in force now, so that undo can put them back
		// even for keys no file set before.
		prior := map[string]string{}
		for _, s := range applied {
			if sc, ok := s.Resource.(*Sysctl); ok {
				if v, err := e.prober.Sysctl(ctx, sc.Key); err == nil {
					prior[sc.Key] = v
				}
			}
		}
		if err := w.SetSysctls(prior); err != nil {
			return err
		}
		run("sysctl", "-q", "-p", filepath.Join(e.liveRoot, sysctlDropIn))
	}
	if reloads["systemd"] || len(units) > 0 {
		run("systemctl", "daemon-reload")
		sort.Strings(units)
		for _, u := range units {
			if _, err := e.cmd.Run(ctx, "systemctl", "is-active", "--quiet", u); err == nil {
				if err := w.AddUnit(u); err != nil {
					return err
				}
				run("systemctl", "stop", u)
			}
		}
	}
	if reloads["ssh"] {
		run("systemctl", "reload", "ssh")
	}
	if reloads["nginx"] {
		run("systemctl", "reload", "nginx")
	}
	return errors.Join(errs...)
}

// Undo restores the state a run found. id "" means the newest run not yet
// undone. When the run's root is "/", units it stopped are started again and
// systemd, sysctl, sshd and nginx reload.
func (e *Engine) Undo(ctx context.Context, stateDir, id string, force bool) (*UndoResult, error) {
	j, err := OpenJournal(stateDir)
	if err != nil {
		return nil, err
	}
	unlock, err := j.Lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	if id == "" {
		runs, err := j.Runs()
		if err != nil {
			return nil, err
		}
		for i := len(runs) - 1; i >= 0; i-- {
			if runs[i].Status != StatusUndone && runs[i].Status != StatusRolledBack {
				id = runs[i].ID
				break
			}
		}
		if id == "" {
			return nil, fmt.Errorf("nothing to undo: no applied run in %s", stateDir)
		}
	}
	res, err := e.undoRun(ctx, j, id, force)
	if err != nil {
		return nil, err
	}
	rec, err := j.Run(id)
	if err != nil {
		return nil, err
	}
	if rec.Root == e.liveRoot {
		var errs []error
		cmds := [][]string{{"systemctl", "daemon-reload"}}
		for _, k := range sortedKeys(rec.Sysctls) {
			cmds = append(cmds, []string{"sysctl", "-q", "-w", k + "=" + rec.Sysctls[k]})
		}
		cmds = append(cmds, []string{"systemctl", "reload-or-restart", "ssh"}, []string{"systemctl", "reload", "nginx"})
		for _, cmd := range cmds {
			if _, err := e.cmd.Run(ctx, cmd[0], cmd[1:]...); err != nil {
				errs = append(errs, err)
			}
		}
		for _, u := range res.Units {
			if _, err := e.cmd.Run(ctx, "systemctl", "start", u); err != nil {
				errs = append(errs, err)
			}
		}
		if len(errs) > 0 {
			e.log.Warn("undo: reloading the running system", "err", errors.Join(errs...))
		}
	}
	e.log.Info("undone", "run", id, "restored", len(res.Restored))
	return res, nil
}

// Runs lists the runs in a state directory.
func (e *Engine) Runs(stateDir string) ([]RunRecord, error) {
	j, err := OpenJournal(stateDir)
	if err != nil {
		return nil, err
	}
	return j.Runs()
}
