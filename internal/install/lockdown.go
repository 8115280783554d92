package install

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/bulwarkhq/bulwark/internal/atomicfile"
	"github.com/bulwarkhq/bulwark/internal/catalog"
	"github.com/bulwarkhq/bulwark/internal/lockdown"
)

// Lockdown applies a hardening profile (the update's installer.profile,
// from the rules built into this binary) as an update, so a site can roll
// out a configuration baseline like any patch. The apply is journaled under
// the state directory; uninstall undoes that run byte for byte.
type Lockdown struct {
	log *slog.Logger
	now func() time.Time
}

type lockdownRecord struct {
	Update  string `json:"update"`
	Profile string `json:"profile"`
	Run     string `json:"run"`
	Root    string `json:"root"`
}

// Install applies the profile. Nothing to change is success; a rule that
// cannot be applied fails the update with the engine's reason.
func (l *Lockdown) Install(ctx context.Context, req Request) (Result, error) {
	if err := req.check(false); err != nil {
		return Result{}, err
	}
	if err := checkID(req.Update.ID); err != nil {
		return Result{}, err
	}
	profile := req.Update.Installer.Profile
	cat, err := lockdown.LoadCatalog()
	if err != nil {
		return Result{}, err
	}
	sel, err := cat.Select(profile, l.now())
	if err != nil {
		return Result{}, &Failure{Update: req.Update.ID, Step: "lockdown", Reason: err.Error(), Err: err}
	}
	eng := lockdown.NewEngine(l.log, l.now, lockdown.ExecCommander{})
	rep, err := eng.Apply(ctx, sel, req.Root, lockdown.ApplyOptions{StateDir: filepath.Join(req.StateDir, "lockdown")})
	if err != nil {
		return Result{}, &Failure{Update: req.Update.ID, Step: "lockdown apply", Reason: err.Error(), Err: err}
	}
	if rep.Run != "" {
		b, _ := json.MarshalIndent(lockdownRecord{Update: req.Update.ID, Profile: profile, Run: rep.Run, Root: req.Root}, "", "  ")
		if err := os.MkdirAll(filepath.Join(req.StateDir, "lockdown-runs"), 0o700); err != nil {
			return Result{}, err
		}
		if err := atomicfile.WriteFile(stateFile(req.StateDir, "lockdown-runs", req.Update.ID), append(b, '\n'), 0o600); err != nil {
			return Result{}, err
		}
	}
	return Result{RebootRequired: rep.Reboot || req.Update.Reboot == catalog.RebootRequired,
		Output: fmt.Sprintf("profile %s: %d rules fixed, score %.1f", profile, rep.Counts[lockdown.ResultFixed], rep.Score)}, nil
}

// Uninstall undoes the run Install made; it refuses, naming the files, when
// someone changed them since.
func (l *Lockdown) Uninstall(ctx context.Context, req Request) (Result, error) {
	if err := req.check(false); err != nil {
		return Result{}, err
	}
	if err := checkID(req.Update.ID); err != nil {
		return Result{}, err
	}
	b, err := os.ReadFile(stateFile(req.StateDir, "lockdown-runs", req.Update.ID))
	if errors.Is(err, os.ErrNotExist) {
		return Result{Output: "nothing to undo: the profile changed nothing"}, nil
	}
	if err != nil {
		return Result{}, err
	}
	var rec lockdownRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return Result{}, fmt.Errorf("lockdown record of %s: %w", req.Update.ID, err)
	}
	eng := lockdown.NewEngine(l.log, l.now, lockdown.ExecCommander{})
	res, err := eng.Undo(ctx, filepath.Join(req.StateDir, "lockdown"), rec.Run, req.Force)
	if err != nil {
		return Result{}, &Failure{Update: req.Update.ID, Step: "lockdown undo", Reason: err.Error(), Err: err}
	}
	os.Remove(stateFile(req.StateDir, "lockdown-runs", req.Update.ID))
	return Result{Output: fmt.Sprintf("undid run %s: restored %d paths", res.Run, len(res.Restored))}, nil
}
