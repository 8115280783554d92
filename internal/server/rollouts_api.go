package server

import (
	"net/http"
	"time"

	"github.com/bulwarkhq/bulwark/internal/duration"
	"github.com/bulwarkhq/bulwark/internal/store"
)

// RuleView is an approval rule as the API shows it: durations as text
// ("72h0m0s" style is avoided: "3d"), with a one-line description.
type RuleView struct {
	store.ApprovalRule
	Delay      string `json:"delay"`
	DeadlineIn string `json:"deadline_in,omitempty"`
	Text       string `json:"text"`
}

func ruleView(r store.ApprovalRule) RuleView {
	v := RuleView{ApprovalRule: r, Delay: duration.Format(r.Delay), Text: RuleText(r)}
	if r.DeadlineIn > 0 {
		v.DeadlineIn = duration.Format(r.DeadlineIn)
	}
	return v
}

// Rollout is one install approval's rollout as the API shows it: results in
// its group, the group's halt threshold, whether it halted and why, and the
// computers whose install failed.
type Rollout struct {
	store.RolloutStats
	Threshold store.HaltThreshold    `json:"threshold"`
	Halted    bool                   `json:"halted"`
	Reason    string                 `json:"reason,omitempty"`
	ChangedBy string                 `json:"changed_by,omitempty"`
	ChangedAt *time.Time             `json:"changed_at,omitempty"`
	Failing   []store.FailedComputer `json:"failing"`
}

// rollouts lists every install approval's rollout; halted only those
// halted. Failing computers (up to 20) are listed for rollouts with
// failures.
func (s *Server) rollouts(r *http.Request, haltedOnly bool) ([]Rollout, error) {
	ctx := r.Context()
	stats, halts, ths, err := s.rolloutState(ctx)
	if err != nil {
		return nil, err
	}
	out := []Rollout{}
	for _, st := range stats {
		h, known := halts[rolloutKey{st.Group, st.Vendor, st.UpdateID}]
		if haltedOnly && !h.Halted {
			continue
		}
		ro := Rollout{RolloutStats: st, Threshold: threshold(ths, st.Group), Halted: h.Halted, Reason: h.Reason, ChangedBy: h.ChangedBy, Failing: []store.FailedComputer{}}
		if known {
			at := h.ChangedAt
			ro.ChangedAt = &at
		}
		if st.Failed > 0 {
			if ro.Failing, err = s.st.FailedComputers(ctx, st.Group, st.Vendor, st.UpdateID, 20); err != nil {
				return nil, err
			}
		}
		out = append(out, ro)
	}
	return out, nil
}

// resumeRollout puts a halted rollout back in its group's signed
// approvals; from now on only results reported after the resume count.
// Resuming a running rollout changes nothing.
func (s *Server) resumeRollout(r *http.Request, group, vendor, id, by string) error {
	if err := s.refuseInReplica(); err != nil {
		return err
	}
	ctx := r.Context()
	halts, err := s.haltsByKey(ctx)
	if err != nil {
		return err
	}
	h, ok := halts[rolloutKey{group, vendor, id}]
	if !ok || !h.Halted {
		// Resuming a rollout that runs changes nothing; one that does not
		// exist is an error.
		aps, err := s.st.Approvals(ctx, group)
		if err != nil {
			return storeErr(err, "group "+group)
		}
		for _, a := range aps {
			if a.Vendor == vendor && a.UpdateID == id && a.Action == "install" {
				return nil
			}
		}
		return errorf(http.StatusNotFound, "no install approval of %s/%s in %s", vendor, id, group)
	}
	h.Halted, h.ChangedBy, h.ChangedAt = false, by, s.now().UTC()
	h.Reason = "resumed by " + by + "; halted because " + h.Reason
	return s.setHalt(ctx, &h)
}

// ThresholdRequest sets a group's halt threshold.
type ThresholdRequest struct {
	FailedPercent int `json:"failed_percent"`
	MinResults    int `json:"min_results"`
}

func (s *Server) setThreshold(r *http.Request, group string, req ThresholdRequest) (*store.HaltThreshold, error) {
	if err := s.refuseInReplica(); err != nil {
		return nil, err
	}
	if req.FailedPercent < 0 || req.FailedPercent > 100 {
		return nil, errorf(http.StatusBadRequest, "failed_percent %d: use 0 to 100 (0 halts at the first failure)", req.FailedPercent)
	}
	if req.MinResults < 1 || req.MinResults > 100000 {
		return nil, errorf(http.StatusBadRequest, "min_results %d: use 1 to 100000", req.MinResults)
	}
	t := store.HaltThreshold{Group: group, FailedPercent: req.FailedPercent, MinResults: req.MinResults}
	if err := s.st.SetHaltThreshold(r.Context(), t); err != nil {
		return nil, storeErr(err, "group "+group)
	}
	return &t, nil
}

func (s *Server) rolloutRoutes(mux *http.ServeMux) {
	v, ap, ad := store.RoleViewer, store.RoleApprover, store.RoleAdmin
	mux.HandleFunc("GET /api/v1/rules", s.withRole(v, func(w http.ResponseWriter, r *http.Request) error {
		rs, err := s.st.ListRules(r.Context())
		if err != nil {
			return err
		}
		out := []RuleView{}
		for _, x := range rs {
			out = append(out, ruleView(x))
		}
		writeJSON(w, http.StatusOK, map[string]any{"rules": out})
		return nil
	}))
	mux.HandleFunc("POST /api/v1/rules", s.withRole(ad, func(w http.ResponseWriter, r *http.Request) error {
		var req RuleRequest
		if err := decodeBody(w, r, maxAdminBody, &req); err != nil {
			return err
		}
		rule, err := s.createRule(r.Context(), req, "token:"+tokenFrom(r.Context()).ID)
		if err != nil {
			return err
		}
		noteAudit(r.Context(), "rule "+rule.ID+" for "+rule.Group)
		writeJSON(w, http.StatusCreated, ruleView(*rule))
		return nil
	}))
	mux.HandleFunc("DELETE /api/v1/rules/{id}", s.withRole(ad, func(w http.ResponseWriter, r *http.Request) error {
		if err := s.refuseInReplica(); err != nil {
			return err
		}
		if err := s.st.DeleteRule(r.Context(), r.PathValue("id")); err != nil {
			return storeErr(err, "rule "+r.PathValue("id"))
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}))
	mux.HandleFunc("GET /api/v1/rollouts", s.withRole(v, func(w http.ResponseWriter, r *http.Request) error {
		state := r.URL.Query().Get("state")
		if state != "" && state != "halted" {
			return errorf(http.StatusBadRequest, "state %q: use halted, or leave it out for every rollout", state)
		}
		ros, err := s.rollouts(r, state == "halted")
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]any{"rollouts": ros})
		return nil
	}))
	mux.HandleFunc("POST /api/v1/rollouts/{group}/{vendor}/{id}/resume", s.withRole(ap, func(w http.ResponseWriter, r *http.Request) error {
		if err := s.resumeRollout(r, r.PathValue("group"), r.PathValue("vendor"), r.PathValue("id"), "token:"+tokenFrom(r.Context()).ID); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}))
	mux.HandleFunc("PUT /api/v1/groups/{group}/halt-threshold", s.withRole(ad, func(w http.ResponseWriter, r *http.Request) error {
		var req ThresholdRequest
		if err := decodeBody(w, r, maxAdminBody, &req); err != nil {
			return err
		}
		t, err := s.setThreshold(r, r.PathValue("group"), req)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, t)
		return nil
	}))
}
