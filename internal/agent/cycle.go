package agent

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/bulwarkhq/bulwark/internal/catalog"
	"github.com/bulwarkhq/bulwark/internal/fetch"
)

// CycleOptions are the inputs of one check-in cycle besides the sources.
type CycleOptions struct {
	AgentID string
	Facts   catalog.Facts
	// Asked lists the keys (vendor/id) a person asked to install now; "*"
	// means every approved update. Downloads then run in the foreground.
	Asked map[string]bool
	// Download options for payloads (background or foreground, progress).
	Download fetch.FileOptions
	// Notify is told about updates that wait for a person (notify and
	// download modes); nil logs them.
	Notify func(waiting []UpdateRecord)
}

// CycleResult says what one cycle did.
type CycleResult struct {
	Approved   int         `json:"approved"`
	Downloaded []string    `json:"downloaded"`
	Pass       *PassResult `json:"pass"`
	Waiting    []string    `json:"waiting"` // for a person: notify and download modes
	// Recheck is when the clock alone could change this cycle's
	// decisions (a deadline passes, a maintenance window opens); zero
	// when nothing waits on the clock. A check-in the server answers
	// "nothing changed" runs a full cycle again from then on.
	Recheck time.Time `json:"-"`
}

// Cycle is one full round: refresh and verify the site's approvals and the
// vendors' metadata, decide with the policy, download what the policy
// allows, install in one pass, and record every state for the next report.
func (a *Agent) Cycle(ctx context.Context, src Sources, o CycleOptions) (*CycleResult, error) {
	if err := a.noticeReboot(); err != nil {
		return nil, err
	}
	vs, err := a.gather(ctx, src)
	if err != nil {
		return nil, err
	}
	res := &CycleResult{Approved: len(vs), Pass: &PassResult{}}
	byKey := map[string]verified{}
	cands := make([]Candidate, 0, len(vs))
	for _, v := range vs {
		byKey[v.Key()] = v
		cands = append(cands, v.Candidate)
	}
	installed := a.store.installed()
	facts := withInstalled{Facts: o.Facts, installed: installed}
	plan, err := BuildPlan(cands, PlanInput{AgentID: o.AgentID, Facts: facts, Installed: installed, Policy: a.cfg.Policy, Now: a.now(), Asked: o.Asked})
	if err != nil {
		return nil, err
	}
	for _, c := range cands {
		d := plan.Decisions[c.Key()]
		if rec := a.store.st.Updates[c.Key()]; rec != nil {
			if d.State == StateNeeded && rec.State == StateDownloaded {
				continue // still downloaded, not needed again
			}
			if d.State == StateInstalled && rec.State == StatePendingReboot {
				continue // until the boot id changes (noticeReboot)
			}
		}
		if err := a.store.set(c.Key(), d.State, d.Reason, recordOf(c)); err != nil {
			return nil, err
		}
	}

	// The cycle's background downloads share one pacer: the payloads
	// after the first start at the rate it found.
	if o.Download.Mode == fetch.Background && o.Download.Pacer == nil {
		o.Download.Pacer = fetch.NewPacer()
	}
	payloads := map[string]map[string]string{}
	var pass []Step
	var waiting []UpdateRecord
	for _, s := range plan.Steps {
		key := s.Key()
		if s.Uninstall {
			files, err := a.download(ctx, byKey[key], o.Download)
			if err != nil {
				if err := a.store.set(key, StateFailed, err.Error(), recordOf(s.Candidate)); err != nil {
					return nil, err
				}
				continue
			}
			payloads[key] = files
			pass = append(pass, s)
			continue
		}
		if s.Action == ActionNotify {
			waiting = append(waiting, *a.store.st.Updates[key])
			continue
		}
		files, err := a.download(ctx, byKey[key], o.Download)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if err := a.store.set(key, StateFailed, err.Error(), recordOf(s.Candidate)); err != nil {
				return nil, err
			}
			continue
		}
		payloads[key] = files
		res.Downloaded = append(res.Downloaded, key)
		if err := a.store.set(key, StateDownloaded, "", recordOf(s.Candidate)); err != nil {
			return nil, err
		}
		if s.Action == ActionDownload {
			waiting = append(waiting, *a.store.st.Updates[key])
			continue
		}
		pass = append(pass, s)
	}
	for _, w := range waiting {
		res.Waiting = append(res.Waiting, w.Key)
	}
	res.Recheck = a.recheckAt(cands, plan, len(waiting) > 0)
	if len(waiting) > 0 {
		if o.Notify != nil {
			o.Notify(waiting)
		} else {
			a.log.Info("updates wait for a person: run `bulwark agent install`", "count", len(waiting))
		}
	}
	if res.Pass, err = a.runPass(ctx, pass, payloads); err != nil {
		return nil, err
	}
	// Payloads of updates now installed are no longer needed.
	for _, k := range append(res.Pass.Installed, res.Pass.Uninstalled...) {
		v := byKey[k]
		os.RemoveAll(filepath.Join(a.cfg.StateDir, "downloads", v.Vendor, v.Update.ID))
	}
	return res, nil
}

// recheckAt is the earliest time at which the clock alone changes what a
// plan decides: the deadline of an approved update that is not installed
// yet (a deadline overrides the policy and the staged rollout), or, in
// scheduled mode with updates waiting, now (the window may open at any
// later check-in). Zero: nothing waits on the clock.
func (a *Agent) recheckAt(cands []Candidate, plan *Plan, waiting bool) time.Time {
	now := a.now()
	if waiting && a.cfg.Policy.Mode == ModeScheduled {
		return now
	}
	var at time.Time
	for _, c := range cands {
		switch plan.Decisions[c.Key()].State {
		case StateNeeded, StateDownloaded, StateFailed:
		default:
			continue
		}
		if dl := c.Approval.Deadline; dl != nil && now.Before(*dl) && (at.IsZero() || dl.Before(at)) {
			at = *dl
		}
	}
	return at
}

func recordOf(c Candidate) *UpdateRecord {
	return &UpdateRecord{Title: c.Update.Title, Severity: string(c.Update.Severity), Revision: c.Update.Revision}
}

// withInstalled answers the update_installed applicability rule from the
// agent's own record.
type withInstalled struct {
	catalog.Facts
	installed map[string]bool
}

func (w withInstalled) UpdateInstalled(id string) bool {
	for k := range w.installed {
		if k == id || filepath.Base(k) == id {
			return true
		}
	}
	return false
}
