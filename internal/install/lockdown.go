package install

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

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
		if err := writeRecord(req.StateDir, "lockdown-runs", req.Update.ID, lockdownRecord{Update: req.Update.ID, Profile: profile, Run: rep.Run, Root: req.Root}); err != nil {
			return Result{}, err
		}
	}
	return Result{RebootRequired: rep.Reboot || req.Update.Reboot == catalog.RebootRequired,
		Output: fmt.Sprintf("profile %s: %d rules fixed, score %.1f", profile, rep.Counts[lockdown.ResultFixed], rep.Score)}, nil
}

// Uninstall undoes the run Install made; it refuses, naming the files, when
// someone changed them since.
func (l *Lockdown) Uninstall(ctx context.Context, req Request) (Result, error) {
	if err := req.checkUninstall(); err != nil {
		return Result{}, err
	}
	var rec lockdownRecord
	ok, err := readRecord(req.StateDir, "lockdown-runs", req.Update.ID, 64<<10, &rec)
	if err != nil {
		return Result{}, err
	}
	if !ok {
		return Result{Output: "nothing to undo: the profile changed nothing"}, nil
	}
	eng := lockdown.NewEngine(l.log, l.now, lockdown.ExecCommander{})
	res, err := eng.Undo(ctx, filepath.Join(req.StateDir, "lockdown"), rec.Run, req.Force)
	if err != nil {
		return Result{}, &Failure{Update: req.Update.ID, Step: "lockdown undo", Reason: err.Error(), Err: err}
	}
	removeRecord(req.StateDir, "lockdown-runs", req.Update.ID)
	return Result{Output: fmt.Sprintf("undid run %s: restored %d paths", res.Run, len(res.Restored))}, nil
}

// LastLockdown names the profile of the lockdown update installed last
// under stateDir (the directory Bind was given), and when; ok is false
// when none is installed.
func LastLockdown(stateDir string) (profile string, at time.Time, ok bool) {
	ents, err := os.ReadDir(filepath.Join(stateDir, "lockdown-runs"))
	if err != nil {
		return "", time.Time{}, false
	}
	for _, e := range ents {
		id, isJSON := strings.CutSuffix(e.Name(), ".json")
		info, err := e.Info()
		if !isJSON || err != nil || !info.Mode().IsRegular() || (ok && !info.ModTime().After(at)) {
			continue
		}
		var rec lockdownRecord
		if found, err := readRecord(stateDir, "lockdown-runs", id, 64<<10, &rec); err != nil || !found || rec.Profile == "" {
			continue
		}
		profile, at, ok = rec.Profile, info.ModTime(), true
	}
	return profile, at, ok
}
