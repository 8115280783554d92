package server

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/bulwarkhq/bulwark/internal/approval"
	"github.com/bulwarkhq/bulwark/internal/store"
)

//go:embed openapi.json
var openAPI []byte

func (s *Server) adminRoutes(mux *http.ServeMux) {
	v, ap, ad := store.RoleViewer, store.RoleApprover, store.RoleAdmin
	mux.HandleFunc("GET /api/v1/openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(openAPI)
	})
	mux.HandleFunc("GET /api/v1/status", s.withRole(v, s.apiStatus))
	mux.HandleFunc("GET /api/v1/repositories", s.withRole(v, s.apiRepositories))
	mux.HandleFunc("GET /api/v1/groups", s.withRole(v, s.apiListGroups))
	mux.HandleFunc("POST /api/v1/groups", s.withRole(ad, s.apiCreateGroup))
	mux.HandleFunc("DELETE /api/v1/groups/{group}", s.withRole(ad, s.apiDeleteGroup))
	mux.HandleFunc("POST /api/v1/groups/{group}/computers", s.withRole(ad, s.apiMoveComputers))
	mux.HandleFunc("GET /api/v1/groups/{group}/approvals", s.withRole(v, s.apiListApprovals))
	mux.HandleFunc("PUT /api/v1/groups/{group}/approvals/{vendor}/{id}", s.withRole(ap, s.apiSetApproval))
	mux.HandleFunc("DELETE /api/v1/groups/{group}/approvals/{vendor}/{id}", s.withRole(ap, s.apiDeleteApproval))
	mux.HandleFunc("GET /api/v1/updates", s.withRole(v, s.apiListUpdates))
	mux.HandleFunc("GET /api/v1/computers", s.withRole(v, s.apiListComputers))
	mux.HandleFunc("GET /api/v1/computers/{id}", s.withRole(v, s.apiShowComputer))
	mux.HandleFunc("DELETE /api/v1/computers/{id}", s.withRole(ad, s.apiDeleteComputer))
	mux.HandleFunc("POST /api/v1/computers/{id}/revoke", s.withRole(ad, s.apiRevokeComputer))
	mux.HandleFunc("POST /api/v1/computers/{id}/approve", s.withRole(ad, s.apiApproveComputer))
	mux.HandleFunc("GET /api/v1/tokens", s.withRole(ad, s.apiListTokens))
	mux.HandleFunc("POST /api/v1/tokens", s.withRole(ad, s.apiCreateToken))
	mux.HandleFunc("DELETE /api/v1/tokens/{id}", s.withRole(ad, s.apiRevokeToken))
	mux.HandleFunc("POST /api/v1/sync", s.withRole(ad, s.apiTriggerSync))
	mux.HandleFunc("GET /api/v1/sync", s.withRole(v, s.apiSyncHistory))
	mux.HandleFunc("GET /api/v1/sync/progress", s.withRole(v, s.apiSyncProgress))
	mux.HandleFunc("GET /api/v1/site/root", s.withRole(v, s.apiGetSiteRoot))
	mux.HandleFunc("PUT /api/v1/site/root", s.withRole(ad, s.apiPutSiteRoot))
}

func (s *Server) apiStatus(w http.ResponseWriter, r *http.Request) error {
	st, err := s.status(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

func (s *Server) apiRepositories(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]any{"repositories": s.Repositories()})
	return nil
}

func checkName(what, name string) error {
	if !approval.ValidName(name) {
		return errorf(http.StatusBadRequest, "%s %q: use 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", what, name)
	}
	return nil
}

func (s *Server) apiListGroups(w http.ResponseWriter, r *http.Request) error {
	pg, err := pageParams(r, defaultAPIPage)
	if err != nil {
		return err
	}
	gs, err := s.st.ListGroups(r.Context())
	if err != nil {
		return err
	}
	gs, next := paginate(gs, func(g store.Group) string { return g.Name }, pg)
	writeJSON(w, http.StatusOK, listAnswer("groups", gs, next))
	return nil
}

// GroupRequest creates a group.
type GroupRequest struct {
	Name string `json:"name"`
}

func (s *Server) apiCreateGroup(w http.ResponseWriter, r *http.Request) error {
	var req GroupRequest
	if err := decodeBody(w, r, maxAdminBody, &req); err != nil {
		return err
	}
	if err := s.createGroup(r.Context(), req.Name); err != nil {
		return err
	}
	s.log.Info("group created", "group", req.Name, "by", tokenFrom(r.Context()).ID)
	writeJSON(w, http.StatusCreated, store.Group{Name: req.Name, CreatedAt: s.now().UTC()})
	return nil
}

func (s *Server) apiDeleteGroup(w http.ResponseWriter, r *http.Request) error {
	g := r.PathValue("group")
	if err := s.deleteGroup(r.Context(), g, r.URL.Query().Get("move_to")); err != nil {
		return err
	}
	s.log.Info("group deleted", "group", g, "by", tokenFrom(r.Context()).ID)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// MoveRequest moves computers into a group.
type MoveRequest struct {
	Computers []string `json:"computers"`
}

func (s *Server) apiMoveComputers(w http.ResponseWriter, r *http.Request) error {
	g := r.PathValue("group")
	var req MoveRequest
	if err := decodeBody(w, r, maxAdminBody, &req); err != nil {
		return err
	}
	if err := s.moveComputers(r.Context(), req.Computers, g); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"group": g, "moved": len(req.Computers)})
	return nil
}

func (s *Server) apiListApprovals(w http.ResponseWriter, r *http.Request) error {
	pg, err := pageParams(r, defaultAPIPage)
	if err != nil {
		return err
	}
	aps, err := s.st.Approvals(r.Context(), r.PathValue("group"))
	if err != nil {
		return storeErr(err, "group "+r.PathValue("group"))
	}
	aps, next := paginate(aps, func(a store.Approval) string { return a.Vendor + "\x00" + a.UpdateID }, pg)
	resp := listAnswer("approvals", aps, next)
	resp["group"] = r.PathValue("group")
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// ApprovalRequest sets what a group does with one update.
type ApprovalRequest struct {
	Action   string     `json:"action"`             // install | uninstall | decline
	Deadline *time.Time `json:"deadline,omitempty"` // RFC 3339
	Rollout  int        `json:"rollout,omitempty"`  // percent, 1..100; default 100
}

func (req *ApprovalRequest) validate(now time.Time) error {
	switch req.Action {
	case approval.ActionInstall, approval.ActionUninstall, approval.ActionDecline:
	default:
		return errorf(http.StatusBadRequest, "action %q: use install, uninstall or decline", req.Action)
	}
	if req.Rollout == 0 {
		req.Rollout = 100
	}
	if req.Rollout < 1 || req.Rollout > 100 {
		return errorf(http.StatusBadRequest, "rollout %d: use a percentage from 1 to 100", req.Rollout)
	}
	if req.Deadline != nil {
		if req.Action == approval.ActionDecline {
			return errorf(http.StatusBadRequest, "deadline: a declined update has no deadline")
		}
		if req.Deadline.Before(now.Add(-24*time.Hour)) || req.Deadline.After(now.Add(10*365*24*time.Hour)) {
			return errorf(http.StatusBadRequest, "deadline %s: use a time from now to ten years ahead", req.Deadline.Format(time.RFC3339))
		}
	}
	return nil
}

func (s *Server) apiSetApproval(w http.ResponseWriter, r *http.Request) error {
	if err := s.refuseInReplica(); err != nil {
		return err
	}
	g, vendor, id := r.PathValue("group"), r.PathValue("vendor"), r.PathValue("id")
	var req ApprovalRequest
	if err := decodeBody(w, r, maxAdminBody, &req); err != nil {
		return err
	}
	if err := req.validate(s.now()); err != nil {
		return err
	}
	a := &store.Approval{Group: g, Vendor: vendor, UpdateID: id, Action: req.Action, Deadline: req.Deadline, Rollout: req.Rollout,
		By: tokenFrom(r.Context()).ID, UpdatedAt: s.now()}
	if err := s.putApproval(r.Context(), a); err != nil {
		return err
	}
	s.log.Info("approval set", "group", g, "vendor", vendor, "update", id, "action", req.Action, "rollout", req.Rollout, "by", a.By)
	writeJSON(w, http.StatusOK, a)
	return nil
}

func (s *Server) apiDeleteApproval(w http.ResponseWriter, r *http.Request) error {
	g, vendor, id := r.PathValue("group"), r.PathValue("vendor"), r.PathValue("id")
	if err := s.removeApproval(r.Context(), g, vendor, id); err != nil {
		return err
	}
	s.log.Info("approval removed", "group", g, "vendor", vendor, "update", id, "by", tokenFrom(r.Context()).ID)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// publishApprovals signs a group's approvals from the store into the site
// repository, every target read again from the vendor's verified metadata.
// A vendor repository that cannot be verified now (broken, expired, no
// longer served) fails alone: its approvals stay as they were last signed,
// and every other vendor's are signed as the store says. Callers hold
// approvalsMu.
func (s *Server) publishApprovals(ctx context.Context, group string) error {
	aps, err := s.st.Approvals(ctx, group)
	if err != nil {
		return storeErr(err, "group "+group)
	}
	prev := map[string]approval.Approval{}
	if old, err := s.site.Approvals(ctx, group); err == nil {
		for _, a := range old.Updates {
			prev[a.Vendor+"/"+a.ID] = a
		}
	}
	// A rollout that halted itself is left out until it is resumed.
	halted, err := s.haltedIn(ctx, group)
	if err != nil {
		return err
	}
	broken := map[string]error{}
	doc := &approval.Document{Group: group, Updates: []approval.Approval{}}
	for _, a := range aps {
		key := a.Vendor + "/" + a.UpdateID
		if halted[key] {
			continue
		}
		ap := approval.Approval{Vendor: a.Vendor, ID: a.UpdateID, Action: a.Action, Deadline: a.Deadline, Rollout: a.Rollout, Targets: []approval.Target{}}
		var err error
		if a.Action != approval.ActionDecline {
			rp, ok := s.repos[a.Vendor]
			switch err = broken[a.Vendor]; {
			case err != nil:
			case !ok:
				err = fmt.Errorf("vendor repository %s is no longer served", a.Vendor)
			default:
				if ap.Targets, _, err = s.updateTargets(ctx, rp, a.UpdateID); err != nil {
					var he *httpError
					if !errors.As(err, &he) || he.code != http.StatusNotFound {
						broken[a.Vendor] = err
					}
				}
			}
		}
		if err != nil {
			s.log.Warn("approval kept as last signed: its vendor repository cannot be verified now", "group", group, "update", key, "err", err)
			if p, ok := prev[key]; ok {
				doc.Updates = append(doc.Updates, p)
			}
			continue
		}
		doc.Updates = append(doc.Updates, ap)
	}
	defer s.forgetApprovals()
	if err := s.site.SetApprovals(ctx, doc); err != nil {
		return err
	}
	return nil
}

// UpdateView is an update with how many computers are in each state.
type UpdateView struct {
	store.Update
	States map[string]int `json:"states"`
	// NeededBy counts the computers that need it: needed, downloaded or
	// failed.
	NeededBy int `json:"needed_by"`
}

func (s *Server) apiListUpdates(w http.ResponseWriter, r *http.Request) error {
	f, err := s.updateFilter(r.URL.Query(), "after", "limit")
	if err != nil {
		return err
	}
	pg, err := pageParams(r, defaultAPIPage)
	if err != nil {
		return err
	}
	out, err := s.updateViews(r.Context(), f)
	if err != nil {
		return err
	}
	if min, _ := neededMin(r.URL.Query()); min > 0 { // checked by updateFilter
		out = slices.DeleteFunc(out, func(u UpdateView) bool { return u.NeededBy < min })
	}
	out, next := paginate(out, func(u UpdateView) string { return u.Vendor + "\x00" + u.ID }, pg)
	writeJSON(w, http.StatusOK, listAnswer("updates", out, next))
	return nil
}

// updateViews lists indexed updates matching f with their state counts.
func (s *Server) updateViews(ctx context.Context, f store.UpdateFilter) ([]UpdateView, error) {
	us, err := s.st.ListUpdates(ctx, f)
	if err != nil {
		return nil, err
	}
	counts, err := s.st.StateCounts(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]UpdateView, 0, len(us))
	for _, u := range us {
		st := counts[u.Vendor+"/"+u.ID]
		if st == nil {
			st = map[string]int{}
		}
		out = append(out, UpdateView{Update: u, States: st, NeededBy: st["needed"] + st["downloaded"] + st["failed"]})
	}
	return out, nil
}

func (s *Server) apiListComputers(w http.ResponseWriter, r *http.Request) error {
	f, err := s.computerFilter(r, 1000)
	if err != nil {
		return err
	}
	cs, err := s.st.ListComputers(r.Context(), f)
	if err != nil {
		return err
	}
	resp := map[string]any{"computers": cs}
	if len(cs) == f.Limit {
		resp["next"] = cursorOf(cs[len(cs)-1])
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// ComputerView is one computer with its per-update states.
type ComputerView struct {
	store.Agent
	Updates []store.UpdateState `json:"updates"`
}

func (s *Server) apiShowComputer(w http.ResponseWriter, r *http.Request) error {
	a, err := s.st.Agent(r.Context(), r.PathValue("id"))
	if err != nil {
		return storeErr(err, "computer "+r.PathValue("id"))
	}
	st, err := s.st.AgentStates(r.Context(), a.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ComputerView{Agent: *a, Updates: st})
	return nil
}

func (s *Server) apiDeleteComputer(w http.ResponseWriter, r *http.Request) error {
	if err := s.st.DeleteAgent(r.Context(), r.PathValue("id")); err != nil {
		return storeErr(err, "computer "+r.PathValue("id"))
	}
	s.log.Info("computer removed", "agent", r.PathValue("id"), "by", tokenFrom(r.Context()).ID)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) apiRevokeComputer(w http.ResponseWriter, r *http.Request) error {
	if err := s.st.SetAgentStatus(r.Context(), r.PathValue("id"), store.AgentRevoked, "revoked by "+tokenFrom(r.Context()).ID); err != nil {
		return storeErr(err, "computer "+r.PathValue("id"))
	}
	s.log.Info("computer revoked", "agent", r.PathValue("id"), "by", tokenFrom(r.Context()).ID)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// apiApproveComputer lets a pending enrollment (F2) replace the other
// identities of its machine id.
func (s *Server) apiApproveComputer(w http.ResponseWriter, r *http.Request) error {
	ctx, id, by := r.Context(), r.PathValue("id"), tokenFrom(r.Context()).ID
	a, err := s.st.Agent(ctx, id)
	if err != nil {
		return storeErr(err, "computer "+id)
	}
	if err := s.approvePending(ctx, a, by); err != nil {
		return err
	}
	s.log.Info("pending enrollment approved", "agent", id, "machine_id", a.MachineID, "by", by)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) apiListTokens(w http.ResponseWriter, r *http.Request) error {
	kind := r.URL.Query().Get("kind")
	if kind != "" && kind != store.KindAPI && kind != store.KindEnroll {
		return errorf(http.StatusBadRequest, "kind %q: use api or enroll", kind)
	}
	pg, err := pageParams(r, defaultAPIPage)
	if err != nil {
		return err
	}
	ts, err := s.st.ListTokens(r.Context(), kind)
	if err != nil {
		return err
	}
	ts, next := paginate(ts, tokenOrder, pg)
	writeJSON(w, http.StatusOK, listAnswer("tokens", ts, next))
	return nil
}

// TokenRequest creates a token.
type TokenRequest struct {
	Kind        string `json:"kind"` // api | enroll
	Name        string `json:"name,omitempty"`
	Role        string `json:"role,omitempty"`         // api: admin | approver | viewer
	Group       string `json:"group,omitempty"`        // enroll: group agents join (default "default")
	ClientGroup bool   `json:"client_group,omitempty"` // enroll: agents may ask for their group
	MaxUses     int    `json:"max_uses,omitempty"`     // enroll: 0 = unlimited
	ExpiresIn   string `json:"expires_in,omitempty"`   // Go duration, e.g. "24h"; default never for api, 24h for enroll
}

// TokenResponse carries a new token's secret, shown this once.
type TokenResponse struct {
	Token string      `json:"token"`
	Info  store.Token `json:"info"`
}

func (s *Server) apiCreateToken(w http.ResponseWriter, r *http.Request) error {
	var req TokenRequest
	if err := decodeBody(w, r, maxAdminBody, &req); err != nil {
		return err
	}
	if len(req.Name) > 200 {
		return errorf(http.StatusBadRequest, "name: at most 200 characters")
	}
	t := &store.Token{Kind: req.Kind, Name: req.Name}
	var exp time.Duration
	if req.ExpiresIn != "" {
		d, err := time.ParseDuration(req.ExpiresIn)
		if err != nil || d <= 0 || d > 10*365*24*time.Hour {
			return errorf(http.StatusBadRequest, "expires_in %q: use a positive duration such as 24h or 720h", req.ExpiresIn)
		}
		exp = d
	}
	switch req.Kind {
	case store.KindAPI:
		if _, ok := roleRank[req.Role]; !ok {
			return errorf(http.StatusBadRequest, "role %q: use admin, approver or viewer", req.Role)
		}
		if req.Group != "" || req.ClientGroup || req.MaxUses != 0 {
			return errorf(http.StatusBadRequest, "group, client_group and max_uses are for enroll tokens")
		}
		t.Role = req.Role
	case store.KindEnroll:
		if req.Role != "" {
			return errorf(http.StatusBadRequest, "role is for api tokens")
		}
		if req.Group == "" {
			req.Group = DefaultGroup
		}
		if _, err := s.st.Approvals(r.Context(), req.Group); err != nil {
			return storeErr(err, "group "+req.Group)
		}
		if req.MaxUses < 0 || req.MaxUses > 1_000_000 {
			return errorf(http.StatusBadRequest, "max_uses %d: use 0 (unlimited) to 1000000", req.MaxUses)
		}
		if exp == 0 {
			exp = 24 * time.Hour
		}
		t.Group, t.ClientGroup, t.MaxUses = req.Group, req.ClientGroup, req.MaxUses
	default:
		return errorf(http.StatusBadRequest, "kind %q: use api or enroll", req.Kind)
	}
	if exp > 0 {
		e := s.now().Add(exp).UTC()
		t.ExpiresAt = &e
	}
	secret, t, err := s.newToken(r.Context(), t)
	if err != nil {
		return err
	}
	s.log.Info("token created", "token", t.ID, "kind", t.Kind, "role", t.Role, "group", t.Group, "by", tokenFrom(r.Context()).ID)
	noteAudit(r.Context(), "token "+t.ID+" "+t.Kind+" "+t.Role+t.Group)
	writeJSON(w, http.StatusCreated, TokenResponse{Token: secret, Info: *t})
	return nil
}

func (s *Server) apiRevokeToken(w http.ResponseWriter, r *http.Request) error {
	// The store checks and revokes in one transaction: the last admin
	// token stays, even with several server processes on one database.
	id := r.PathValue("id")
	if err := s.st.RevokeTokenKeepingAdmin(r.Context(), id, s.now()); errors.Is(err, store.ErrLastAdmin) {
		return errorf(http.StatusConflict, "token %s is the last admin token; create another admin token first (bulwark admin tokens create --role admin)", id)
	} else if err != nil {
		return storeErr(err, "token "+id)
	}
	s.log.Info("token revoked", "token", id, "by", tokenFrom(r.Context()).ID)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// SyncRequest asks for a sync now.
type SyncRequest struct {
	Vendor string `json:"vendor,omitempty"` // "" = every vendor repository
}

func (s *Server) apiTriggerSync(w http.ResponseWriter, r *http.Request) error {
	var req SyncRequest
	if r.ContentLength != 0 {
		if err := decodeBody(w, r, maxAdminBody, &req); err != nil {
			return err
		}
	}
	if req.Vendor != "" {
		if _, ok := s.repos[req.Vendor]; !ok {
			return errorf(http.StatusNotFound, "no vendor repository %q", req.Vendor)
		}
	}
	if r.URL.Query().Get("wait") == "true" {
		runs, err := s.SyncAll(r.Context(), req.Vendor, "manual")
		if err != nil && len(runs) == 0 {
			return err
		}
		writeJSON(w, http.StatusOK, map[string]any{"runs": runs})
		return nil
	}
	select {
	case s.syncNow <- req.Vendor:
	default:
		return errorf(http.StatusTooManyRequests, "syncs are already queued")
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"queued": true, "vendor": req.Vendor})
	return nil
}

func (s *Server) apiSyncHistory(w http.ResponseWriter, r *http.Request) error {
	before, limit, err := beforePage(r, 50)
	if err != nil {
		return err
	}
	runs, err := s.st.ListSyncsBefore(r.Context(), before, limit)
	if err != nil {
		return err
	}
	next := ""
	if len(runs) == limit {
		next = strconv.FormatInt(runs[len(runs)-1].ID, 10)
	}
	writeJSON(w, http.StatusOK, listAnswer("runs", runs, next))
	return nil
}

var errNotSynced = errors.New("vendor repository not synced yet")
