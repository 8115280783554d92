package server

import (
	"net/http"
	"net/url"
	"time"

	"github.com/bulwarkhq/bulwark/internal/policy"
	"github.com/bulwarkhq/bulwark/internal/store"
)

// Group policy page.

type policyRow struct {
	policy.Field
	Value   string
	Allowed bool
}

type policyPage struct {
	Group     string
	UpdatedBy string
	UpdatedAt time.Time
	Rows      []policyRow
	Edit      bool // the viewer may change it (admin)
	Lockdown  *policy.Lockdown
	Profiles  []string // the built-in lockdown profiles
}

func (s *Server) consoleGroupPolicy(w http.ResponseWriter, r *http.Request) error {
	gp, err := s.st.GroupPolicy(r.Context(), r.PathValue("group"))
	if err != nil {
		return storeErr(err, "group "+r.PathValue("group"))
	}
	p := &policyPage{Group: gp.Group, UpdatedBy: gp.UpdatedBy, UpdatedAt: gp.UpdatedAt, Edit: viewerFrom(r.Context()).can(store.RoleAdmin)}
	for _, f := range policy.Fields {
		p.Rows = append(p.Rows, policyRow{Field: f, Value: gp.Policy.Value(f.Key), Allowed: gp.Policy.Allows(f.Key)})
	}
	p.Lockdown = gp.Policy.Lockdown
	if p.Profiles, err = lockdownProfiles(); err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "grouppolicy", "Policy of group "+gp.Group, p)
	return nil
}

func (s *Server) consoleSetGroupPolicy(w http.ResponseWriter, r *http.Request) error {
	group := r.PathValue("group")
	var p policy.Group
	for _, f := range policy.Fields {
		if err := p.Set(f.Key, r.PostForm.Get(f.Key)); err != nil {
			return errorf(http.StatusBadRequest, "%v", err)
		}
	}
	p.AllowLocal = r.PostForm["allow_local"]
	// The lockdown profile comes from the form; its waivers (set with the
	// API or CLI) stay as they are.
	cur, err := s.st.GroupPolicy(r.Context(), group)
	if err != nil {
		return storeErr(err, "group "+group)
	}
	if name := r.PostForm.Get("lockdown_profile"); name != "" {
		p.Lockdown = &policy.Lockdown{Profile: name}
		if cur.Policy.Lockdown != nil {
			p.Lockdown.Waivers = cur.Policy.Lockdown.Waivers
		}
	}
	v := viewerFrom(r.Context())
	gp, err := s.setGroupPolicy(r.Context(), group, p, v.Subject)
	if err != nil {
		return err
	}
	s.audit(r, v.Subject, "console", "group.policy", group, "policy "+policyText(gp.Policy))
	http.Redirect(w, r, "/console/groups/"+url.PathEscape(group)+"/policy", http.StatusSeeOther)
	return nil
}
