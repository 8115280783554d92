package server

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"

	"github.com/bulwarkhq/bulwark/internal/policy"
	"github.com/bulwarkhq/bulwark/internal/store"
)

// PolicyStore keeps the central policy of each computer group.
type PolicyStore interface {
	// GroupPolicy is a group's policy (empty when none is set); an unknown
	// group is store.ErrNotFound.
	GroupPolicy(ctx context.Context, group string) (*store.GroupPolicy, error)
	// SetGroupPolicy stores a policy; an empty one removes it.
	SetGroupPolicy(ctx context.Context, p *store.GroupPolicy) error
	ListGroupPolicies(ctx context.Context) ([]store.GroupPolicy, error)
}

// policyCache keeps the group policies check-ins deliver, so a check-in
// reads no database row for them. Every change empties it, on every
// replica (dropSiteCaches).
type policyCache struct {
	mu     sync.Mutex
	loaded bool
	gen    uint64
	by     map[string]*policy.Group
}

func (c *policyCache) forget() {
	c.mu.Lock()
	c.loaded, c.by = false, nil
	c.gen++
	c.mu.Unlock()
}

// groupPolicyFor is the policy a check-in delivers to a group's agents
// (nil: none).
func (s *Server) groupPolicyFor(ctx context.Context, group string) (*policy.Group, error) {
	c := &s.policies
	c.mu.Lock()
	if c.loaded {
		p := c.by[group]
		c.mu.Unlock()
		return p, nil
	}
	gen := c.gen
	c.mu.Unlock()
	ps, err := s.st.ListGroupPolicies(ctx)
	if err != nil {
		return nil, err
	}
	by := map[string]*policy.Group{}
	for i := range ps {
		by[ps[i].Group] = &ps[i].Policy
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen == c.gen {
		c.loaded, c.by = true, by
	}
	return by[group], nil
}

// setGroupPolicy checks and stores a group's policy, audits the change
// with the policy as it now is, and makes every replica's next check-in
// answer deliver it.
func (s *Server) setGroupPolicy(ctx context.Context, group string, p policy.Group, by string) (*store.GroupPolicy, error) {
	if err := s.refuseInReplica(); err != nil {
		return nil, err
	}
	if err := p.Check(); err != nil {
		return nil, errorf(http.StatusBadRequest, "policy of group %s: %v", group, err)
	}
	gp := &store.GroupPolicy{Group: group, Policy: p, UpdatedBy: by, UpdatedAt: s.now().UTC()}
	if err := s.st.SetGroupPolicy(ctx, gp); err != nil {
		return nil, storeErr(err, "group "+group)
	}
	s.policies.forget()
	s.forgetApprovals() // tells the other replicas too
	s.log.Info("group policy changed", "group", group, "policy", policyText(p), "by", by)
	return gp, nil
}

// policyText is a policy as the audit log shows it.
func policyText(p policy.Group) string {
	if p.Empty() {
		return "cleared"
	}
	b, _ := json.Marshal(p)
	return string(b)
}

// GroupPolicyAnswer is a group's policy as the API shows it, with every
// setting the policy knows.
type GroupPolicyAnswer struct {
	store.GroupPolicy
	Settings []string `json:"settings"`
}

func (s *Server) policyRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/groups/{group}/policy", s.withRole(store.RoleViewer, s.apiGetGroupPolicy))
	mux.HandleFunc("PUT /api/v1/groups/{group}/policy", s.withRole(store.RoleAdmin, s.apiPutGroupPolicy))
}

func (s *Server) apiGetGroupPolicy(w http.ResponseWriter, r *http.Request) error {
	gp, err := s.st.GroupPolicy(r.Context(), r.PathValue("group"))
	if err != nil {
		return storeErr(err, "group "+r.PathValue("group"))
	}
	writeJSON(w, http.StatusOK, GroupPolicyAnswer{GroupPolicy: *gp, Settings: policy.Keys()})
	return nil
}

func (s *Server) apiPutGroupPolicy(w http.ResponseWriter, r *http.Request) error {
	var p policy.Group
	if err := decodeBody(w, r, maxAdminBody, &p); err != nil {
		return err
	}
	gp, err := s.setGroupPolicy(r.Context(), r.PathValue("group"), p, "token:"+tokenFrom(r.Context()).ID)
	if err != nil {
		return err
	}
	noteAudit(r.Context(), "policy "+policyText(gp.Policy))
	writeJSON(w, http.StatusOK, GroupPolicyAnswer{GroupPolicy: *gp, Settings: policy.Keys()})
	return nil
}
