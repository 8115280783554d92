package server

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/approval"
	"github.com/bulwarkhq/bulwark/internal/catalog"
	"github.com/bulwarkhq/bulwark/internal/duration"
	"github.com/bulwarkhq/bulwark/internal/store"
)

// Automatic approval rules, rings, and rollouts that halt themselves.

// RolloutStore keeps approval rules, halted rollouts and halt thresholds.
type RolloutStore interface {
	CreateRule(ctx context.Context, r *store.ApprovalRule) error
	ListRules(ctx context.Context) ([]store.ApprovalRule, error)
	DeleteRule(ctx context.Context, id string) error
	// RolloutStats counts installed and failed results of every install
	// approval among the computers of its group.
	RolloutStats(ctx context.Context) ([]store.RolloutStats, error)
	// SetRolloutHalt records a halt or a resume; no such install approval
	// is store.ErrNotFound.
	SetRolloutHalt(ctx context.Context, h *store.RolloutHalt) error
	RolloutHalts(ctx context.Context) ([]store.RolloutHalt, error)
	SetHaltThreshold(ctx context.Context, t store.HaltThreshold) error
	HaltThresholds(ctx context.Context) ([]store.HaltThreshold, error)
	FailedComputers(ctx context.Context, group, vendor, id string, limit int) ([]store.FailedComputer, error)
}

// DefaultHaltThreshold halts a group's rollout when more than 20% of at
// least 3 results failed, unless the group has its own threshold.
var DefaultHaltThreshold = store.HaltThreshold{FailedPercent: 20, MinResults: 3}

// rolloutEvery is how often rules and halt thresholds are evaluated.
const rolloutEvery = 30 * time.Second

func (s *Server) rolloutLoop(ctx context.Context) {
	t := time.NewTicker(rolloutEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := s.EvaluateRollouts(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("evaluate approval rules and rollouts", "err", err)
		}
	}
}

// RolloutActions says what one evaluation did.
type RolloutActions struct {
	Halted   []string `json:"halted"`   // group:vendor/id
	Approved []string `json:"approved"` // group:vendor/id by rule
}

type rolloutKey struct{ group, vendor, id string }

func (k rolloutKey) String() string { return k.group + ":" + k.vendor + "/" + k.id }

// EvaluateRollouts halts every rollout whose failure rate passed its
// group's threshold (taking it out of the group's signed approvals), then
// applies the approval rules. A replica does neither: its upstream does.
func (s *Server) EvaluateRollouts(ctx context.Context) (*RolloutActions, error) {
	act := &RolloutActions{Halted: []string{}, Approved: []string{}}
	if s.replica() {
		return act, nil
	}
	now := s.now().UTC()
	stats, halts, thresholds, err := s.rolloutState(ctx)
	if err != nil {
		return nil, err
	}
	byKey := map[rolloutKey]store.RolloutStats{}
	for _, st := range stats {
		k := rolloutKey{st.Group, st.Vendor, st.UpdateID}
		byKey[k] = st
		if halts[k].Halted {
			continue
		}
		failed, results := st.Failed, st.Installed+st.Failed
		th := threshold(thresholds, st.Group)
		if results < th.MinResults || failed*100 <= th.FailedPercent*results {
			continue
		}
		nh := &store.RolloutHalt{Group: st.Group, Vendor: st.Vendor, UpdateID: st.UpdateID, Halted: true, Failed: failed, Results: results,
			ChangedBy: "server", ChangedAt: now,
			Reason: fmt.Sprintf("%d of %d results failed (%d%%), over the group's threshold of %d%% of at least %d", failed, results, failed*100/results, th.FailedPercent, th.MinResults)}
		if err := s.setHalt(ctx, nh); err != nil {
			return act, err
		}
		halts[k] = *nh
		act.Halted = append(act.Halted, k.String())
		s.log.Warn("rollout halted", "group", k.group, "update", k.vendor+"/"+k.id, "reason", nh.Reason)
		s.auditServer("rollout.halt", k.String(), nh.Reason)
	}
	approved, err := s.applyRules(ctx, now, byKey, halts, thresholds)
	act.Approved = approved
	return act, err
}

// setHalt records a halt or resume and signs the group's approvals again
// (a halted rollout is not in them).
func (s *Server) setHalt(ctx context.Context, h *store.RolloutHalt) error {
	unlock, err := s.lockSite(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	if err := s.st.SetRolloutHalt(ctx, h); err != nil {
		return storeErr(err, "install approval of "+h.Vendor+"/"+h.UpdateID+" in "+h.Group)
	}
	return s.publishApprovals(ctx, h.Group)
}

// haltedIn lists the halted rollouts of a group ("vendor/id").
func (s *Server) haltedIn(ctx context.Context, group string) (map[string]bool, error) {
	hs, err := s.st.RolloutHalts(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, h := range hs {
		if h.Group == group && h.Halted {
			out[h.Vendor+"/"+h.UpdateID] = true
		}
	}
	return out, nil
}

// rolloutState reads every rollout's counts, the halts and the groups'
// thresholds.
func (s *Server) rolloutState(ctx context.Context) ([]store.RolloutStats, map[rolloutKey]store.RolloutHalt, map[string]store.HaltThreshold, error) {
	stats, err := s.st.RolloutStats(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	halts, err := s.haltsByKey(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	ths, err := s.thresholds(ctx)
	return stats, halts, ths, err
}

func (s *Server) haltsByKey(ctx context.Context) (map[rolloutKey]store.RolloutHalt, error) {
	hs, err := s.st.RolloutHalts(ctx)
	if err != nil {
		return nil, err
	}
	out := map[rolloutKey]store.RolloutHalt{}
	for _, h := range hs {
		out[rolloutKey{h.Group, h.Vendor, h.UpdateID}] = h
	}
	return out, nil
}

func (s *Server) thresholds(ctx context.Context) (map[string]store.HaltThreshold, error) {
	ts, err := s.st.HaltThresholds(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]store.HaltThreshold{}
	for _, t := range ts {
		out[t.Group] = t
	}
	return out, nil
}

func threshold(ts map[string]store.HaltThreshold, group string) store.HaltThreshold {
	if t, ok := ts[group]; ok {
		return t
	}
	t := DefaultHaltThreshold
	t.Group = group
	return t
}

// applyRules approves, for each rule, every matching update the rule's
// group has no approval (or decline) for yet, once the rule's condition
// holds. An admin's decision for a group is never overridden.
func (s *Server) applyRules(ctx context.Context, now time.Time, stats map[rolloutKey]store.RolloutStats, halts map[rolloutKey]store.RolloutHalt, ths map[string]store.HaltThreshold) ([]string, error) {
	rules, err := s.st.ListRules(ctx)
	if err != nil || len(rules) == 0 {
		return []string{}, err
	}
	updates, err := s.st.ListUpdates(ctx, store.UpdateFilter{})
	if err != nil {
		return nil, err
	}
	decided := map[string]map[string]bool{} // group → vendor/id with any approval
	var approved []string
	for _, r := range rules {
		if decided[r.Group] == nil {
			aps, err := s.st.Approvals(ctx, r.Group)
			if err != nil {
				return approved, err
			}
			decided[r.Group] = map[string]bool{}
			for _, a := range aps {
				decided[r.Group][a.Vendor+"/"+a.UpdateID] = true
			}
		}
		for _, u := range updates {
			if decided[r.Group][u.Vendor+"/"+u.ID] || !ruleMatches(r, u) {
				continue
			}
			if r.After == "" {
				if now.Sub(u.IndexedAt) < r.Delay {
					continue
				}
			} else {
				k := rolloutKey{r.After, u.Vendor, u.ID}
				st, ok := stats[k]
				th := threshold(ths, r.After)
				if !ok || halts[k].Halted || now.Sub(st.ApprovedAt) < r.Delay || st.Installed == 0 ||
					st.Failed*100 > th.FailedPercent*(st.Installed+st.Failed) {
					continue
				}
			}
			a := &store.Approval{Group: r.Group, Vendor: u.Vendor, UpdateID: u.ID, Action: approval.ActionInstall, Rollout: r.Rollout, By: "rule:" + r.ID, UpdatedAt: now}
			if r.DeadlineIn > 0 {
				d := now.Add(r.DeadlineIn)
				a.Deadline = &d
			}
			if err := s.putApproval(ctx, a); err != nil {
				var he *httpError
				if errors.As(err, &he) && he.code == http.StatusNotFound {
					s.log.Warn("approval rule: update not approvable", "rule", r.ID, "update", u.Vendor+"/"+u.ID, "err", err)
					decided[r.Group][u.Vendor+"/"+u.ID] = true
					continue
				}
				return approved, err
			}
			decided[r.Group][u.Vendor+"/"+u.ID] = true
			k := rolloutKey{r.Group, u.Vendor, u.ID}.String()
			approved = append(approved, k)
			detail := "rule " + r.ID
			if r.After != "" {
				detail += fmt.Sprintf(" after %s (soaked %s)", r.After, r.Delay)
			}
			s.log.Info("approved by rule", "rule", r.ID, "group", r.Group, "update", u.Vendor+"/"+u.ID)
			s.auditServer("rule.approve", k, detail)
		}
	}
	if approved == nil {
		approved = []string{}
	}
	return approved, nil
}

func ruleMatches(r store.ApprovalRule, u store.Update) bool {
	if (r.Vendor != "" && r.Vendor != u.Vendor) || (r.Product != "" && r.Product != u.Product) || (r.Classification != "" && r.Classification != u.Classification) {
		return false
	}
	return r.MinSeverity == "" || catalog.Severity(u.Severity).Rank() >= catalog.Severity(r.MinSeverity).Rank()
}

// auditServer records an action the server took by itself.
func (s *Server) auditServer(action, target, detail string) {
	e := &store.AuditEntry{At: s.now().UTC(), Actor: "server", Via: "rollout", Action: action, Target: target, Detail: detail}
	if err := s.st.AddAudit(context.Background(), e); err != nil {
		s.log.Error("audit log", "action", action, "err", err)
	}
}

// RuleRequest creates an approval rule. Delay and DeadlineIn are
// durations such as "72h" or "3d".
type RuleRequest struct {
	Group          string `json:"group"`
	Vendor         string `json:"vendor,omitempty"`
	Product        string `json:"product,omitempty"`
	Classification string `json:"classification,omitempty"`
	MinSeverity    string `json:"min_severity,omitempty"`
	After          string `json:"after,omitempty"`
	Delay          string `json:"delay,omitempty"`
	DeadlineIn     string `json:"deadline_in,omitempty"`
	Rollout        int    `json:"rollout,omitempty"`
}

// createRule checks and stores a rule.
func (s *Server) createRule(ctx context.Context, req RuleRequest, by string) (*store.ApprovalRule, error) {
	if err := s.refuseInReplica(); err != nil {
		return nil, err
	}
	r := &store.ApprovalRule{Group: req.Group, Vendor: req.Vendor, Product: req.Product, Classification: req.Classification,
		MinSeverity: req.MinSeverity, After: req.After, Rollout: req.Rollout, CreatedBy: by, CreatedAt: s.now().UTC()}
	if err := checkName("group", r.Group); err != nil {
		return nil, err
	}
	if r.Rollout == 0 {
		r.Rollout = 100
	}
	if r.Rollout < 1 || r.Rollout > 100 {
		return nil, errorf(http.StatusBadRequest, "rollout %d: use a percentage from 1 to 100", r.Rollout)
	}
	if r.MinSeverity != "" {
		if _, err := catalog.ParseSeverity(r.MinSeverity); err != nil {
			return nil, errorf(http.StatusBadRequest, "min_severity: %v", err)
		}
	}
	if r.Classification != "" {
		if _, err := catalog.ParseClassification(r.Classification); err != nil {
			return nil, errorf(http.StatusBadRequest, "classification: %v", err)
		}
	}
	var err error
	if r.Delay, err = parseSpan("delay", req.Delay); err != nil {
		return nil, err
	}
	if r.DeadlineIn, err = parseSpan("deadline_in", req.DeadlineIn); err != nil {
		return nil, err
	}
	if r.After != "" {
		if r.After == r.Group {
			return nil, errorf(http.StatusBadRequest, "after names the rule's own group %s: name the ring before it", r.Group)
		}
		if _, err := s.st.Approvals(ctx, r.After); err != nil {
			return nil, storeErr(err, "after group "+r.After)
		}
	}
	r.ID = "rule-" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(randomBytes(10)))
	if err := s.st.CreateRule(ctx, r); err != nil {
		return nil, storeErr(err, "group "+r.Group)
	}
	return r, nil
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// parseSpan reads a duration with days ("3d", "36h", "90m"); "" is 0.
func parseSpan(what, v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := duration.Parse(v)
	if err != nil || d < 0 {
		return 0, errorf(http.StatusBadRequest, "%s %q: use a duration such as 3d, 36h or 90m", what, v)
	}
	return d, nil
}
