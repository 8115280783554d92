package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/bulwarkhq/bulwark/internal/lockdown"
	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/wire"
)

// LockdownStore keeps what computers report of their lockdown audits.
type LockdownStore interface {
	// AgentLockdown is a computer's last reported audit with the rules
	// not passing; store.ErrNotFound when it reported none.
	AgentLockdown(ctx context.Context, id string) (*store.LockdownStatus, error)
	// GroupLockdown sums a group's reported audits, with at most maxRules
	// rules (not passing on most computers first) and maxMembers computers
	// (lowest score first).
	GroupLockdown(ctx context.Context, group string, maxRules, maxMembers int) (*store.GroupLockdown, error)
}

// How much of a group the lockdown view lists.
const (
	groupLockdownRules   = 200
	groupLockdownMembers = 1000
)

func (s *Server) lockdownRoutes(mux *http.ServeMux) {
	v := store.RoleViewer
	mux.HandleFunc("GET /api/v1/computers/{id}/lockdown", s.withRole(v, s.apiComputerLockdown))
	mux.HandleFunc("GET /api/v1/groups/{group}/lockdown", s.withRole(v, s.apiGroupLockdown))
	mux.HandleFunc("GET /console/groups/{group}/lockdown", s.page(v, s.consoleGroupLockdown))
}

func (s *Server) apiComputerLockdown(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if _, err := s.st.Agent(r.Context(), id); err != nil {
		return storeErr(err, "computer "+id)
	}
	l, err := s.st.AgentLockdown(r.Context(), id)
	if err != nil {
		return storeErr(err, "a lockdown audit of computer "+id+" (the agent reports one when its group's policy or agent.yaml names a profile)")
	}
	writeJSON(w, http.StatusOK, l)
	return nil
}

func (s *Server) apiGroupLockdown(w http.ResponseWriter, r *http.Request) error {
	g, err := s.st.GroupLockdown(r.Context(), r.PathValue("group"), groupLockdownRules, groupLockdownMembers)
	if err != nil {
		return storeErr(err, "group "+r.PathValue("group"))
	}
	writeJSON(w, http.StatusOK, g)
	return nil
}

// lockdownRecord turns a validated report's audit into the store's record.
func lockdownRecord(c *wire.LockdownAudit) *store.LockdownStatus {
	l := &store.LockdownStatus{Profile: c.Profile, Source: c.Source, Score: c.Score, Pass: c.Pass, Fail: c.Fail, Waived: c.Waived,
		Errors: c.Errors, NotApplicable: c.NotApplicable, Drift: c.Drift, Error: c.Error, AuditedAt: c.AuditedAt, AppliedAt: c.AppliedAt}
	for _, r := range c.Rules {
		l.Rules = append(l.Rules, store.LockdownRule{ID: r.ID, Title: r.Title, Severity: r.Severity, Result: r.Result, Drift: r.Drift,
			CIS: r.CIS, SSG: r.SSG, Waiver: r.Waiver, WaivedUntil: r.WaivedUntil})
	}
	return l
}

// computerLockdown is a computer's audit for its console page; nil when it
// reported none.
func (s *Server) computerLockdown(ctx context.Context, id string) (*store.LockdownStatus, error) {
	l, err := s.st.AgentLockdown(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return l, err
}

func (s *Server) consoleGroupLockdown(w http.ResponseWriter, r *http.Request) error {
	group := r.PathValue("group")
	g, err := s.st.GroupLockdown(r.Context(), group, groupLockdownRules, groupLockdownMembers)
	if err != nil {
		return storeErr(err, "group "+group)
	}
	s.render(w, r, http.StatusOK, "lockdown", "Lockdown compliance of "+group, g)
	return nil
}

// lockdownProfiles names the built-in lockdown profiles.
func lockdownProfiles() ([]string, error) {
	cat, err := lockdown.LoadCatalog()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, p := range cat.Profiles() {
		names = append(names, p.Name)
	}
	return names, nil
}
