package agent

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/bulwarkhq/bulwark/internal/atomicfile"
)

// checkinFile, in the state directory, remembers the last full cycle for
// the next process: `bulwark agent run --once` within FreshFor of it asks
// the server with its ETag and, when nothing changed and nothing is due,
// stops there.
const checkinFile = "checkin.json"

// checkinFormat is the version of checkin.json; another is ignored (the
// next run does a full cycle and writes this one).
const checkinFormat = 1

// checkinState is checkin.json.
type checkinState struct {
	Format int `json:"format"`
	// ETag is the server's tag of the check-in answer the full cycle ran
	// on; Group is the group that answer named.
	ETag  string `json:"etag"`
	Group string `json:"group,omitempty"`
	// LastFull is when that cycle finished; Recheck when the clock alone
	// could change its decisions (CycleResult.Recheck; zero: never).
	LastFull time.Time `json:"last_full"`
	Recheck  time.Time `json:"recheck,omitzero"`
	// Local fingerprints what the cycle read on this machine besides the
	// server: the policy in effect and the package database (localStamp).
	Local string `json:"local"`
}

func loadCheckinState(stateDir string) (*checkinState, error) {
	b, err := os.ReadFile(filepath.Join(stateDir, checkinFile))
	if err != nil {
		return nil, err
	}
	var st checkinState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("read %s: %w", filepath.Join(stateDir, checkinFile), err)
	}
	if st.Format != checkinFormat {
		return nil, fmt.Errorf("%s is format %d, this agent reads %d", filepath.Join(stateDir, checkinFile), st.Format, checkinFormat)
	}
	return &st, nil
}

func saveCheckinState(stateDir string, st *checkinState) error {
	st.Format = checkinFormat
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(stateDir, checkinFile), append(b, '\n'), 0o600)
}

// localStamp fingerprints what a cycle reads on this machine that the
// server's ETag does not cover: the policy in effect (agent.yaml, its
// drop-ins and the group policy), the lockdown profile, and the size and
// time of the files the applicability rules read (dpkg's status file,
// os-release). A package installed by hand changes it, and the next
// check-in runs a full cycle.
func (d *Daemon) localStamp() string {
	h := sha256.New()
	d.statusMu.Lock()
	if d.pol.eff != nil {
		json.NewEncoder(h).Encode(settingsOf(d.pol.eff))
	}
	d.statusMu.Unlock()
	fmt.Fprintf(h, "%s\x00%s\x00", d.LockdownProfile, d.pol.local.LockdownProfile)
	for _, f := range []string{"var/lib/dpkg/status", "etc/os-release"} {
		fi, err := os.Stat(filepath.Join(d.Agent.cfg.Root, f))
		if err != nil {
			fmt.Fprintf(h, "%s: %v\x00", f, errors.Unwrap(err))
			continue
		}
		fmt.Fprintf(h, "%s: %d %d\x00", f, fi.Size(), fi.ModTime().UnixNano())
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// rebootHappened reports whether the machine booted since updates started
// waiting for a reboot: the next cycle records them installed.
func (a *Agent) rebootHappened() bool {
	id := a.store.st.PendingBootID
	return id != "" && a.cfg.Reboot.bootID() != "" && a.cfg.Reboot.bootID() != id
}

// Freshness says whether a check-in that the server answers "nothing
// changed" can skip the cycle, and why not when it cannot.
type Freshness struct {
	LastFull time.Time `json:"last_full"`
	Fresh    bool      `json:"fresh"`
	Why      string    `json:"why,omitempty"` // why a full cycle is due
}

// freshness decides for the daemon's state; the caller holds d.mu.
func (d *Daemon) freshness() Freshness {
	now := d.Agent.now()
	f := Freshness{LastFull: d.lastFull}
	switch {
	case d.lastFull.IsZero():
		f.Why = "no full cycle recorded"
	case now.Sub(d.lastFull) >= FreshFor || now.Before(d.lastFull):
		f.Why = fmt.Sprintf("the last full cycle is older than %s", FreshFor)
	case !d.recheck.IsZero() && !now.Before(d.recheck):
		f.Why = "a deadline or maintenance window is due"
	case d.Agent.rebootHappened():
		f.Why = "the machine rebooted since updates waited for it"
	case d.localStamp() != d.stamp:
		f.Why = "the policy or the package database changed"
	default:
		f.Fresh = true
	}
	return f
}

// LoadLastFull takes the last full cycle that checkin.json records (by
// this process or an earlier one) and gives sc its ETag, so that the next
// check-in is conditional: `bulwark agent run --once` calls it. A missing
// or unreadable file leaves a full cycle due.
func (d *Daemon) LoadLastFull(sc *ServerClient) {
	st, err := loadCheckinState(d.Agent.cfg.StateDir)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			d.Agent.log.Warn("ignoring the recorded check-in; running a full cycle", "err", err)
		}
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.lastFull, d.recheck, d.stamp, d.fullETag = st.LastFull, st.Recheck, st.Local, st.ETag
	if st.Group != "" {
		d.Sources.Group = st.Group
	}
	sc.setETag(st.ETag)
}

// saveLastFull records the full cycle that just ran on the answer tagged
// etag; the caller holds d.mu.
func (d *Daemon) saveLastFull(etag string) {
	if etag == "" {
		return
	}
	st := &checkinState{ETag: etag, Group: d.Sources.Group, LastFull: d.lastFull, Recheck: d.recheck, Local: d.stamp}
	if err := saveCheckinState(d.Agent.cfg.StateDir, st); err != nil {
		d.Agent.log.Warn("cannot record the check-in; the next run --once runs a full cycle", "err", err)
	}
}
