package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/bulwarkhq/bulwark/internal/catalog"
	"github.com/bulwarkhq/bulwark/internal/fetch"
	"github.com/bulwarkhq/bulwark/internal/tuf"
	"github.com/bulwarkhq/bulwark/internal/wire"
)

// Report is one batch the agent sends its server: the state changes not yet
// acknowledged (oldest first) and, when it changed, the machine's inventory.
// The server deduplicates by (agent, sequence), so a batch sent twice counts
// once; an empty batch is a heartbeat.
type Report struct {
	AgentID   string  `json:"agent_id"`
	Events    []Event `json:"events"`
	Inventory any     `json:"inventory,omitempty"`
	// Lockdown is the last audit of the lockdown profile, sent once.
	Lockdown *wire.LockdownAudit `json:"lockdown,omitempty"`
}

// Reporter delivers reports; it returns the highest sequence the server has
// stored.
type Reporter interface {
	Report(ctx context.Context, r Report) (acked int64, err error)
}

// maxReportEvents caps one batch; a week offline sends several.
const maxReportEvents = 500

// Daemon runs an Agent for `bulwark agent run`: check-ins on a schedule,
// reports, and the control socket's requests, one cycle at a time.
type Daemon struct {
	Agent    *Agent
	Sources  Sources
	Reporter Reporter
	Options  CycleOptions
	// Inventory returns the machine's inventory for reports; nil sends none.
	Inventory func() (any, error)
	Server    string
	// Textfile is where the agent writes its metrics for node_exporter
	// after each check-in (metrics_textfile); empty writes none.
	Textfile     string
	AgentVersion string
	// LockdownProfile is agent.yaml's lockdown_profile when the daemon
	// has no policy state (SetLocal's agent.yaml wins): audited each cycle
	// when the group's policy names no profile.
	LockdownProfile string

	pendingLockdown *wire.LockdownAudit // audited, not yet delivered

	mu       sync.Mutex // one cycle at a time
	statusMu sync.Mutex
	status   Status
	lastInv  string
	lastFull time.Time // when the last full cycle succeeded
	recheck  time.Time // its CycleResult.Recheck
	stamp    string    // localStamp when it ran
	fullETag string    // the check-in answer it ran on (CheckInWith)
	outcome  CheckInOutcome
	pol      policyState

	// newVendor makes a verifying client for a vendor repository learned
	// after enrollment, and remember records it in the enrollment (Build
	// sets both).
	newVendor func(wire.RepoRef) (*tuf.Client, error)
	remember  func(wire.RepoRef) error
}

// AddVendors takes the vendor repositories the server names that this agent
// has no trusted client for yet (synced after it enrolled): only those whose
// first root is the one the site root's signed vendor list (or a pin on this
// agent) names. A vendor the agent already uses with its trusted root is
// never replaced: that root changes only through TUF root rotation. A ref
// with a bad name, an unlisted vendor or a different root is refused and
// logged.
func (d *Daemon) AddVendors(ctx context.Context, refs []wire.RepoRef) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.newVendor == nil {
		return nil, nil
	}
	if _, err := d.Sources.Site.TrustedVendors(); err != nil {
		if err := d.Sources.Site.Refresh(ctx); err != nil {
			return nil, fmt.Errorf("site repository: %w", err)
		}
	}
	var added []string
	for _, r := range refs {
		if err := catalog.CheckVendorName(r.Name); err != nil {
			d.Agent.log.Warn("the server names a vendor repository badly; refusing it", "err", err)
			continue
		}
		if _, err := d.Sources.vendor(r.Name); err == nil {
			continue // trusted already
		}
		want, err := d.Sources.trustedRoot(r.Name)
		if err != nil {
			d.Agent.log.Warn("refusing a vendor repository the server names", "vendor", r.Name, "err", err)
			continue
		}
		if got := tuf.RootFingerprint(r.Root); got != want {
			d.Agent.log.Warn("refusing a vendor root the server gives: it is not the signed one", "vendor", r.Name, "root", got, "signed", want)
			continue
		}
		c, err := d.newVendor(r)
		if err != nil {
			return added, fmt.Errorf("vendor %s: %w", r.Name, err)
		}
		if d.remember != nil {
			if err := d.remember(r); err != nil {
				return added, err
			}
		}
		if d.Sources.Vendors == nil {
			d.Sources.Vendors = map[string]*tuf.Client{}
		}
		d.Sources.Vendors[r.Name] = c
		added = append(added, r.Name)
	}
	return added, nil
}

// KnowsVendors reports whether the agent has a client for every vendor
// named, whose root the last verified site root trusts (before the first
// site refresh: a client at all).
func (d *Daemon) KnowsVendors(names []string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, err := d.Sources.Site.TrustedVendors()
	refreshed := err == nil
	for _, n := range names {
		if _, ok := d.Sources.Vendors[n]; !ok {
			return false
		}
		if _, err := d.Sources.vendor(n); refreshed && err != nil {
			return false
		}
	}
	return true
}

// FreshFor is how long after a successful full cycle a check-in that the
// server answers "nothing changed" (304) skips the cycle: a check-in
// triggered by a network change is then one small round trip. Scheduled
// check-ins, hours apart, always run a full cycle.
const FreshFor = 6 * time.Hour

// CheckInUnchanged is a check-in the server answered "nothing changed":
// within FreshFor of the last full cycle, with nothing due since (a
// deadline or maintenance window, a reboot, a change of the policy or the
// package database: freshness), it only delivers queued reports;
// otherwise it is a full CheckIn.
func (d *Daemon) CheckInUnchanged(ctx context.Context) error {
	skipped, why, err := d.unchanged(ctx)
	if skipped {
		return err
	}
	_, err = d.checkIn(ctx, "the server's answer is unchanged, but "+why)
	return err
}

// unchanged skips the cycle when the last full one is fresh, delivering
// queued reports only; otherwise it says why a full cycle is due.
func (d *Daemon) unchanged(ctx context.Context) (skipped bool, why string, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	f := d.freshness()
	if !f.Fresh {
		return false, f.Why, nil
	}
	d.outcome = CheckInOutcome{LastFull: d.lastFull}
	if len(d.Agent.store.pending(1)) == 0 {
		d.setLastCheckIn(nil)
		return true, "", nil
	}
	err = d.report(ctx)
	d.outcome.Reported = err == nil
	d.setLastCheckIn(err)
	return true, "", err
}

// CheckInOutcome says what the last check-in did: a full cycle (and why),
// or nothing but a conditional request (and the delivery of queued
// reports) because the server's answer was unchanged and the full cycle
// at LastFull is fresh.
type CheckInOutcome struct {
	Full     bool      `json:"full_cycle"`
	Why      string    `json:"why,omitempty"`
	LastFull time.Time `json:"last_full_cycle,omitzero"`
	Reported bool      `json:"reported_queued_changes,omitempty"`
}

// LastOutcome is what the last check-in did.
func (d *Daemon) LastOutcome() CheckInOutcome {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.outcome
}

func (d *Daemon) setLastCheckIn(err error) {
	d.statusMu.Lock()
	d.status.LastCheckIn = d.Agent.now()
	d.status.LastError = ""
	if err != nil {
		d.status.LastError = err.Error()
	} else {
		d.status.LastCheckInOK = d.status.LastCheckIn
	}
	d.statusMu.Unlock()
	if err := d.WriteTextfile(); err != nil {
		d.Agent.log.Warn("metrics textfile", "err", err)
	}
}

// CheckIn is one scheduled round: a background cycle, then the report.
func (d *Daemon) CheckIn(ctx context.Context) error {
	_, err := d.checkIn(ctx, "")
	return err
}

// checkIn runs a full cycle and the report; ok says the cycle succeeded.
func (d *Daemon) checkIn(ctx context.Context, why string) (ok bool, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.setBusy("checking in")
	defer d.setBusy("")
	d.outcome = CheckInOutcome{Full: true, Why: why, LastFull: d.lastFull}
	res, err := d.Agent.Cycle(ctx, d.Sources, d.Options)
	d.lockdown(ctx)
	if err == nil {
		// The fingerprint after the lockdown profile is applied: what
		// the cycle itself changed is not a change since.
		d.lastFull, d.recheck, d.stamp, d.fullETag = d.Agent.now(), res.Recheck, d.localStamp(), ""
		d.outcome.LastFull = d.lastFull
	}
	rerr := d.report(ctx)
	d.setLastCheckIn(errors.Join(err, rerr))
	return err == nil, errors.Join(err, rerr)
}

// report sends every undelivered event, in batches, and the inventory when
// it changed since the last report.
func (d *Daemon) report(ctx context.Context) error {
	if d.Reporter == nil {
		return nil
	}
	var inv any
	if d.Inventory != nil {
		if v, err := d.Inventory(); err == nil {
			if s := fmt.Sprint(v); s != d.lastInv {
				inv, d.lastInv = v, s
			}
		}
	}
	for first := true; ; first = false {
		evs := d.Agent.store.pending(maxReportEvents)
		if len(evs) == 0 && !first {
			return nil
		}
		acked, err := d.Reporter.Report(ctx, Report{AgentID: d.Options.AgentID, Events: evs, Inventory: inv, Lockdown: d.pendingLockdown})
		if err != nil {
			d.lastInv = "" // send it again next time
			return fmt.Errorf("report: %w", err)
		}
		inv, d.pendingLockdown = nil, nil
		if err := d.Agent.store.delivered(acked); err != nil {
			return err
		}
		if len(evs) < maxReportEvents {
			return nil
		}
	}
}

// Status implements Controller.
func (d *Daemon) Status() Status {
	d.statusMu.Lock()
	st := d.status
	d.statusMu.Unlock()
	st.AgentID, st.Group, st.Mode, st.Server = d.Options.AgentID, d.Sources.Group, d.policy().Mode, d.Server
	d.statusMu.Lock()
	if d.pol.eff != nil {
		st.Settings = settingsOf(d.pol.eff)
	}
	d.statusMu.Unlock()
	st.States = map[State]int{}
	for _, r := range d.Agent.Updates() {
		st.States[r.State]++
		if r.State == StatePendingReboot {
			st.PendingReboot = true
		}
	}
	return st
}

// Updates implements Controller.
func (d *Daemon) Updates() []UpdateRecord { return d.Agent.Updates() }

// InstallNow implements Controller: a foreground cycle for what a person
// asked for, then a report.
func (d *Daemon) InstallNow(ctx context.Context, keys []string, all bool, progress func(Progress)) (*CycleResult, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.setBusy("installing at a person's request")
	defer d.setBusy("")
	o := d.Options
	o.Asked = map[string]bool{}
	if all {
		o.Asked["*"] = true
	}
	known := map[string]bool{}
	for _, r := range d.Agent.Updates() {
		known[r.Key] = true
	}
	for _, k := range keys {
		if !strings.Contains(k, "/") {
			// An id alone: every vendor's update of that id.
			for key := range known {
				if strings.HasSuffix(key, "/"+k) {
					o.Asked[key] = true
				}
			}
		}
		o.Asked[k] = true
	}
	o.Download.Mode = fetch.Foreground // a person is waiting
	o.Download.Progress = nil
	if progress != nil {
		cur := ""
		o.Download.Progress = func(done, total int64) { progress(Progress{Update: cur, Phase: "download", Done: done, Total: total}) }
		d.Agent.onStep = func(key, phase string) {
			cur = key
			progress(Progress{Update: key, Phase: phase})
		}
		defer func() { d.Agent.onStep = nil }()
	}
	res, err := d.Agent.Cycle(ctx, d.Sources, o)
	d.lockdown(ctx)
	if rerr := d.report(ctx); rerr != nil && err == nil {
		d.Agent.log.Warn("report after install failed; it will be sent at the next check-in", "err", rerr)
	}
	return res, err
}

// lockdown audits (and, when the group's policy says so, applies) the
// lockdown profile after a cycle; the result goes with the next report.
func (d *Daemon) lockdown(ctx context.Context) {
	var pol *LockdownSetting
	if g := d.pol.group; g != nil && g.Lockdown != nil {
		pol = &LockdownSetting{Profile: g.Lockdown.Profile, Source: LockdownFromPolicy, Apply: true, Waivers: g.Lockdown.LockdownWaivers()}
	}
	profile := d.LockdownProfile
	if d.pol.local.LockdownProfile != "" {
		profile = d.pol.local.LockdownProfile
	}
	set, ok := LockdownSettingFor(pol, profile, d.Agent.cfg.StateDir)
	if !ok {
		return
	}
	c, err := d.Agent.Lockdown(ctx, set)
	if err != nil {
		d.Agent.log.Warn("lockdown audit failed; reported at the next cycle", "profile", set.Profile, "err", err)
		return
	}
	if c.Error != "" {
		d.Agent.log.Warn("lockdown", "profile", set.Profile, "err", c.Error)
	}
	d.pendingLockdown = c
}

func (d *Daemon) setBusy(s string) {
	d.statusMu.Lock()
	d.status.Busy = s
	d.statusMu.Unlock()
}

// SetNextCheckIn records when the schedule will check in next.
func (d *Daemon) SetNextCheckIn(t time.Time) {
	d.statusMu.Lock()
	d.status.NextCheckIn = t
	d.statusMu.Unlock()
}

var _ Controller = (*Daemon)(nil)

// CheckInWith is one check-in of `bulwark agent run`: ask the server whether
// anything changed, learn vendor repositories and a group move it names, and
// run a full cycle (or, when nothing changed, only deliver reports).
func (d *Daemon) CheckInWith(ctx context.Context, sc *ServerClient) error {
	info, changed, err := sc.CheckIn(ctx)
	if err != nil {
		return err
	}
	etag := sc.ETag()
	if !changed {
		d.mu.Lock()
		ranOn := d.fullETag
		d.mu.Unlock()
		// A full cycle that failed after the answer changed left none
		// that ran on this answer: one runs now.
		why := "no full cycle succeeded on it yet"
		if ranOn == etag {
			var skipped bool
			if skipped, why, err = d.unchanged(ctx); skipped {
				return err
			}
		}
		return d.fullOn(ctx, etag, "the server's answer is unchanged, but "+why)
	}
	if !d.KnowsVendors(info.Vendors) {
		refs, err := sc.Vendors(ctx)
		if err != nil {
			return err
		}
		if added, err := d.AddVendors(ctx, refs); err != nil {
			return err
		} else if len(added) > 0 {
			d.Agent.log.Info("trusting vendor repositories synced after enrollment", "vendors", added)
		}
	}
	if info.Group != "" && info.Group != d.Sources.Group {
		d.Agent.log.Info("the server moved this computer to another group", "from", d.Sources.Group, "to", info.Group)
		d.Sources.Group = info.Group
	}
	// The group's central policy applies from this cycle on; one that
	// cannot apply is logged and the settings in effect stay.
	if err := d.SetGroupPolicy(info.Policy); err != nil {
		d.Agent.log.Warn("group policy not applied", "err", err)
	}
	return d.fullOn(ctx, etag, "the server's answer changed")
}

// fullOn runs a full cycle on the check-in answer tagged etag and, when it
// succeeds, records it in checkin.json for the next process (run --once).
func (d *Daemon) fullOn(ctx context.Context, etag, why string) error {
	ok, err := d.checkIn(ctx, why)
	if ok {
		d.mu.Lock()
		d.fullETag = etag
		d.saveLastFull(etag)
		d.mu.Unlock()
	}
	return err
}
