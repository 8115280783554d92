package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/catalog"
)

// Handler installs and removes one kind of update (deb, archive, lockdown).
type Handler interface {
	// Install applies the update from its verified payload files (file
	// name → local path) and says whether a reboot is needed to finish.
	Install(ctx context.Context, u *catalog.Update, payloads map[string]string) (reboot bool, err error)
	Uninstall(ctx context.Context, u *catalog.Update, payloads map[string]string) (reboot bool, err error)
}

// BatchHandler is a Handler that installs several updates of a pass in one
// transaction (deb: one apt-get install of all their payloads, so that apt
// orders Pre-Depends across updates and a root an earlier broken install
// left with unmet dependencies is repaired by the update that fixes it).
type BatchHandler interface {
	InstallBatch(ctx context.Context, us []*catalog.Update, payloads []map[string]string) (reboot []bool, errs []error)
}

// Handlers finds the handler for an installer type.
type Handlers func(installerType string) (Handler, error)

// Reboot is how the agent restarts the machine: at most once, at the end of
// a pass, and only when an installed update needs it.
type Reboot struct {
	// Command is run with no shell; tests use a command that records its
	// calls. Empty: never reboot (the updates stay pending until a reboot).
	Command []string
	// BootIDPath is read to tell one boot from the next
	// (/proc/sys/kernel/random/boot_id).
	BootIDPath string
}

func (r Reboot) bootID() string {
	b, err := os.ReadFile(r.BootIDPath)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// PassResult says what one install pass did.
type PassResult struct {
	Installed   []string `json:"installed"`
	Uninstalled []string `json:"uninstalled"`
	Failed      []string `json:"failed"`
	Rebooted    bool     `json:"rebooted"`
}

// runPass installs (or removes) every step whose Action is install, in
// order, each recorded in the pass journal before and after, then reboots
// once if any of them needs it. payloads maps a step's key to its verified
// files. A step whose requirement failed in this pass is not attempted.
func (a *Agent) runPass(ctx context.Context, steps []Step, payloads map[string]map[string]string) (*PassResult, error) {
	res := &PassResult{}
	var todo []Step
	for _, s := range steps {
		if s.Action == ActionInstall {
			todo = append(todo, s)
		}
	}
	if len(todo) == 0 {
		return res, nil
	}
	j, err := a.startPass()
	if err != nil {
		return nil, err
	}
	defer j.close()
	id := a.passID
	pre, err := a.batch(ctx, j, todo, payloads)
	if err != nil {
		return nil, err
	}
	failed := map[string]bool{}
	needReboot := false
	for _, s := range todo {
		key := s.Key()
		info := &UpdateRecord{Title: s.Update.Title, Severity: string(s.Update.Severity), Revision: s.Update.Revision}
		blocked := ""
		for _, req := range s.Update.Requires {
			if _, done := pre[key]; failed[s.Vendor+"/"+req] && !done {
				blocked = req
			}
		}
		if blocked != "" {
			failed[key] = true
			res.Failed = append(res.Failed, key)
			if err := a.store.set(key, StateFailed, "not attempted: its requirement "+blocked+" failed in this pass", info); err != nil {
				return nil, err
			}
			continue
		}
		op := "install"
		if s.Uninstall {
			op = "uninstall"
		}
		h, err := a.cfg.Handlers(s.Update.Installer.Type)
		if err != nil {
			return nil, err
		}
		// A stop (SIGTERM) starts no new step; the one in hand finishes
		// (the unit gives it 15 minutes, like apt-daily-upgrade), so dpkg
		// is never killed half-way through a package.
		if _, done := pre[key]; !done && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err := j.append(passEntry{Pass: id, Time: a.now(), Key: key, Op: op, Phase: "begin"}); err != nil {
			return nil, err
		}
		a.log.Info("installing", "update", key, "op", op)
		a.step(key, op)
		var reboot bool
		stepCtx := context.WithoutCancel(ctx)
		if r, ok := pre[key]; ok {
			reboot, err = r.reboot, r.err
		} else if s.Uninstall {
			reboot, err = h.Uninstall(stepCtx, s.Update, payloads[key])
		} else {
			reboot, err = h.Install(stepCtx, s.Update, payloads[key])
		}
		reboot = reboot || s.Update.Reboot == catalog.RebootRequired
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err() // interrupted, not failed: the next pass retries
			}
			failed[key] = true
			res.Failed = append(res.Failed, key)
			if jerr := j.append(passEntry{Pass: id, Time: a.now(), Key: key, Op: op, Phase: "failed", Reason: err.Error()}); jerr != nil {
				return nil, jerr
			}
			a.log.Warn("install failed", "update", key, "err", err)
			if err := a.store.set(key, StateFailed, err.Error(), info); err != nil {
				return nil, err
			}
			continue
		}
		if err := j.append(passEntry{Pass: id, Time: a.now(), Key: key, Op: op, Phase: "done", Reboot: reboot}); err != nil {
			return nil, err
		}
		st := StateInstalled
		switch {
		case s.Uninstall:
			st = StateNotApplicable
			res.Uninstalled = append(res.Uninstalled, key)
		default:
			res.Installed = append(res.Installed, key)
		}
		if reboot {
			needReboot = true
			if !s.Uninstall {
				st = StatePendingReboot
			}
		}
		reason := ""
		if s.Uninstall {
			reason = "uninstalled as the site approved"
		}
		if err := a.store.set(key, st, reason, info); err != nil {
			return nil, err
		}
	}
	if needReboot {
		a.store.st.PendingBootID = a.cfg.Reboot.bootID()
		if err := a.store.save(); err != nil {
			return nil, err
		}
		if len(a.cfg.Reboot.Command) > 0 {
			if err := j.append(passEntry{Pass: id, Time: a.now(), Op: "reboot", Phase: "begin"}); err != nil {
				return nil, err
			}
			a.log.Info("rebooting once to finish the pass", "command", a.cfg.Reboot.Command)
			cmd := exec.CommandContext(ctx, a.cfg.Reboot.Command[0], a.cfg.Reboot.Command[1:]...)
			if out, err := cmd.CombinedOutput(); err != nil {
				a.log.Error("reboot command failed", "err", err, "output", strings.TrimSpace(string(out)))
			} else {
				res.Rebooted = true
			}
		}
	}
	if err := j.append(passEntry{Pass: id, Time: a.now(), Op: "pass", Phase: "done"}); err != nil {
		return nil, err
	}
	return res, nil
}

type batchResult struct {
	reboot bool
	err    error
}

// batch installs the install steps of the pass whose handler takes several
// updates at once in one call per installer type, each journaled as begun
// first; the pass loop then records each result as if it had just run the
// step. A type with a single step, or a handler without InstallBatch, is
// left to the loop.
func (a *Agent) batch(ctx context.Context, j *journal, todo []Step, payloads map[string]map[string]string) (map[string]batchResult, error) {
	groups := map[string][]Step{}
	var types []string
	for _, s := range todo {
		if s.Uninstall {
			continue
		}
		t := s.Update.Installer.Type
		if groups[t] == nil {
			types = append(types, t)
		}
		groups[t] = append(groups[t], s)
	}
	pre := map[string]batchResult{}
	for _, t := range types {
		steps := groups[t]
		if len(steps) < 2 {
			continue
		}
		h, err := a.cfg.Handlers(t)
		if err != nil {
			continue // the loop reports it per step
		}
		bh, ok := h.(BatchHandler)
		if !ok {
			continue
		}
		us := make([]*catalog.Update, len(steps))
		files := make([]map[string]string, len(steps))
		for i, s := range steps {
			us[i], files[i] = s.Update, payloads[s.Key()]
			if err := j.append(passEntry{Pass: a.passID, Time: a.now(), Key: s.Key(), Op: "install", Phase: "begin"}); err != nil {
				return nil, err
			}
		}
		a.log.Info("installing in one transaction", "type", t, "updates", len(steps))
		// A stop lets the transaction in hand finish, as for one step.
		reboot, errs := bh.InstallBatch(context.WithoutCancel(ctx), us, files)
		for i, s := range steps {
			pre[s.Key()] = batchResult{reboot: reboot[i], err: errs[i]}
		}
	}
	return pre, nil
}

// startPass opens a fresh pass journal. The previous pass, if it was
// interrupted, was reconciled by recover at Open.
func (a *Agent) startPass() (*journal, error) {
	p := filepath.Join(a.cfg.StateDir, "pass.jsonl")
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	j, err := openJournal(p, func([]byte) error { return nil })
	if err != nil {
		return nil, err
	}
	var b [8]byte
	rand.Read(b[:])
	a.passID = hex.EncodeToString(b[:])
	if err := j.append(passEntry{Pass: a.passID, Time: a.now(), Op: "pass", Phase: "begin"}); err != nil {
		j.close()
		return nil, err
	}
	return j, nil
}

// recover reconciles state.json with the journal of a pass that a crash
// interrupted: a step the journal records as done is installed, whatever
// state.json says, so it is never installed twice; a step that began and
// never finished is left as it was, and the next pass runs it again
// (handlers are idempotent). It also notices a reboot that happened.
func (a *Agent) recover() error {
	p := filepath.Join(a.cfg.StateDir, "pass.jsonl")
	var entries []passEntry
	j, err := openJournal(p, func(line []byte) error {
		var e passEntry
		if err := decodeStrict(line, &e); err != nil {
			return err
		}
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		return err
	}
	j.close()
	finished := len(entries) > 0 && entries[len(entries)-1].Op == "pass" && entries[len(entries)-1].Phase == "done"
	if len(entries) > 0 && !finished {
		a.log.Warn("resuming after an interrupted install pass", "pass", entries[0].Pass)
		for _, e := range entries {
			if e.Key == "" || e.Phase != "done" {
				continue
			}
			st := StateInstalled
			if e.Op == "uninstall" {
				st = StateNotApplicable
			} else if e.Reboot {
				st = StatePendingReboot
				if a.store.st.PendingBootID == "" {
					a.store.st.PendingBootID = a.cfg.Reboot.bootID()
				}
			}
			reason := ""
			if e.Op == "uninstall" {
				reason = "uninstalled as the site approved"
			}
			if r := a.store.st.Updates[e.Key]; r == nil || r.State != st {
				if err := a.store.set(e.Key, st, reason, nil); err != nil {
					return err
				}
			}
		}
	}
	return a.noticeReboot()
}

// noticeReboot marks the updates that waited for a reboot installed once
// the boot id differs from the one they started waiting under; until then
// they stay installed-pending-reboot.
func (a *Agent) noticeReboot() error {
	if id := a.store.st.PendingBootID; id != "" && a.cfg.Reboot.bootID() != "" && a.cfg.Reboot.bootID() != id {
		for _, r := range a.store.records() {
			if r.State == StatePendingReboot {
				if err := a.store.set(r.Key, StateInstalled, "", nil); err != nil {
					return err
				}
			}
		}
		a.store.st.PendingBootID = ""
		if err := a.store.save(); err != nil {
			return err
		}
	}
	return nil
}

func (a *Agent) now() time.Time { return a.cfg.Now().UTC() }
