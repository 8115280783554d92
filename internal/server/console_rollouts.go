package server

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/bulwarkhq/bulwark/internal/duration"
	"github.com/bulwarkhq/bulwark/internal/store"
)

// Rollouts and rules page.

type ruleRow struct {
	Rule store.ApprovalRule
	Text string
}

type rolloutsPage struct {
	Rollouts []Rollout
	Rules    []ruleRow
	Groups   []string
	Default  store.HaltThreshold
}

func (s *Server) consoleRollouts(w http.ResponseWriter, r *http.Request) error {
	ros, err := s.rollouts(r, false)
	if err != nil {
		return err
	}
	rules, err := s.st.ListRules(r.Context())
	if err != nil {
		return err
	}
	gs, err := s.st.ListGroups(r.Context())
	if err != nil {
		return err
	}
	p := &rolloutsPage{Rollouts: ros, Default: DefaultHaltThreshold}
	for _, x := range rules {
		p.Rules = append(p.Rules, ruleRow{Rule: x, Text: RuleText(x)})
	}
	for _, g := range gs {
		p.Groups = append(p.Groups, g.Name)
	}
	s.render(w, r, http.StatusOK, "rollouts", "Rollouts and rules", p)
	return nil
}

func (s *Server) consoleCreateRule(w http.ResponseWriter, r *http.Request) error {
	f := r.PostForm
	req := RuleRequest{Group: f.Get("group"), Vendor: strings.TrimSpace(f.Get("vendor")), Product: strings.TrimSpace(f.Get("product")),
		Classification: strings.TrimSpace(f.Get("classification")), MinSeverity: f.Get("min_severity"), After: f.Get("after"),
		Delay: strings.TrimSpace(f.Get("delay")), DeadlineIn: strings.TrimSpace(f.Get("deadline_in"))}
	if v := strings.TrimSpace(f.Get("rollout")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return errorf(http.StatusBadRequest, "rollout %q: use a percentage from 1 to 100", v)
		}
		req.Rollout = n
	}
	v := viewerFrom(r.Context())
	rule, err := s.createRule(r.Context(), req, v.Subject)
	if err != nil {
		return err
	}
	s.audit(r, v.Subject, "console", "rule.create", rule.ID, RuleText(*rule))
	http.Redirect(w, r, "/console/rollouts", http.StatusSeeOther)
	return nil
}

func (s *Server) consoleDeleteRule(w http.ResponseWriter, r *http.Request) error {
	if err := s.refuseInReplica(); err != nil {
		return err
	}
	id := r.PathValue("id")
	if err := s.st.DeleteRule(r.Context(), id); err != nil {
		return storeErr(err, "rule "+id)
	}
	s.audit(r, viewerFrom(r.Context()).Subject, "console", "rule.delete", id, "")
	http.Redirect(w, r, "/console/rollouts", http.StatusSeeOther)
	return nil
}

func (s *Server) consoleResumeRollout(w http.ResponseWriter, r *http.Request) error {
	v := viewerFrom(r.Context())
	g, vendor, id := r.PathValue("group"), r.PathValue("vendor"), r.PathValue("id")
	if err := s.resumeRollout(r, g, vendor, id, v.Subject); err != nil {
		return err
	}
	s.audit(r, v.Subject, "console", "rollout.resume", g+":"+vendor+"/"+id, "")
	http.Redirect(w, r, "/console/rollouts", http.StatusSeeOther)
	return nil
}

func (s *Server) consoleSetThreshold(w http.ResponseWriter, r *http.Request) error {
	f := r.PostForm
	pct, err1 := strconv.Atoi(strings.TrimSpace(f.Get("failed_percent")))
	min, err2 := strconv.Atoi(strings.TrimSpace(f.Get("min_results")))
	if err1 != nil || err2 != nil {
		return errorf(http.StatusBadRequest, "failed_percent and min_results: give whole numbers")
	}
	t, err := s.setThreshold(r, f.Get("group"), ThresholdRequest{FailedPercent: pct, MinResults: min})
	if err != nil {
		return err
	}
	s.audit(r, viewerFrom(r.Context()).Subject, "console", "rollout.threshold", t.Group, strconv.Itoa(t.FailedPercent)+"% of "+strconv.Itoa(t.MinResults))
	http.Redirect(w, r, "/console/rollouts", http.StatusSeeOther)
	return nil
}

// RuleText says what a rule does in one line (console and CLI).
func RuleText(r store.ApprovalRule) string {
	var match []string
	for _, kv := range [][2]string{{"vendor", r.Vendor}, {"product", r.Product}, {"classification", r.Classification}} {
		if kv[1] != "" {
			match = append(match, kv[0]+" "+kv[1])
		}
	}
	if r.MinSeverity != "" {
		match = append(match, "severity ≥ "+r.MinSeverity)
	}
	what := "every update"
	if len(match) > 0 {
		what = strings.Join(match, ", ")
	}
	when := "at once"
	switch {
	case r.After != "":
		when = "after it succeeded in " + r.After + " for " + duration.Format(r.Delay)
	case r.Delay > 0:
		when = duration.Format(r.Delay) + " after it is indexed"
	}
	s := what + " → " + r.Group + " " + when + ", rollout " + strconv.Itoa(r.Rollout) + "%"
	if r.DeadlineIn > 0 {
		s += ", deadline +" + duration.Format(r.DeadlineIn)
	}
	return s
}
