package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"

	"github.com/bulwarkhq/bulwark/internal/approval"
	"github.com/bulwarkhq/bulwark/internal/policy"
	"github.com/bulwarkhq/bulwark/internal/wire"
)

// The check-in answer cache.
//
// A check-in answer is a function of the agent's id and group and of the
// group's part: its signed approvals document, its policy and the vendor
// list. The group's part is built once per group and generation of the
// site repository (s.ahGen, bumped with every change of approvals,
// rollouts, policies or the vendor list, here and through LISTEN/NOTIFY on
// every replica) and kept with a tag, the SHA-256 of its JSON. An agent's
// ETag is that tag and its own id, so the 304 an unchanged agent gets is
// decided by comparing strings: no answer is built, marshalled or hashed.
// The agent's id, group and status come from the store on every request
// (agentFromTLS), so a move or a revocation takes effect at once.

// groupAnswer is the part of a check-in answer that all agents of one
// group share.
type groupAnswer struct {
	approvalsHash string
	policy        *policy.Group
	vendors       []string
	tag           string // hex SHA-256 (128 bits) of the part's JSON, the group name included
}

// etag is the ETag of the check-in answer this part gives agent id.
func (g *groupAnswer) etag(id string) string { return `"` + g.tag + "-" + id + `"` }

// matches says whether inm (an If-None-Match header) is exactly the ETag
// of the answer this part gives agent id, without building that ETag.
func (g *groupAnswer) matches(inm, id string) bool {
	n := len(g.tag)
	return len(inm) == n+len(id)+3 && inm[0] == '"' && inm[len(inm)-1] == '"' &&
		inm[1:1+n] == g.tag && inm[1+n] == '-' && inm[2+n:len(inm)-1] == id
}

// answer is the whole check-in answer for agent id of group.
func (g *groupAnswer) answer(id, group string) wire.CheckinResponse {
	return wire.CheckinResponse{AgentID: id, Group: group, Approvals: approval.Path(group), ApprovalsHash: g.approvalsHash,
		Vendors: g.vendors, Policy: g.policy}
}

// checkinGroup is group's part of the check-in answer, cached until the
// site repository (approvals, policies, vendors) changes.
func (s *Server) checkinGroup(ctx context.Context, group string) (*groupAnswer, error) {
	s.ahMu.Lock()
	g, ok := s.ahCache[group]
	gen := s.ahGen
	s.ahMu.Unlock()
	if ok {
		return g, nil
	}
	// Everything below is read after gen: a change meanwhile bumps the
	// generation (after emptying the policy cache), and the part built
	// from what may be older data is then not kept.
	doc, err := s.site.Approvals(ctx, group)
	if err != nil {
		return nil, err
	}
	js, err := doc.JSON()
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(js)
	pol, err := s.groupPolicyFor(ctx, group)
	if err != nil {
		return nil, err
	}
	g = &groupAnswer{approvalsHash: hex.EncodeToString(sum[:]), policy: pol, vendors: []string{}}
	for _, rp := range s.sortedRepos() {
		g.vendors = append(g.vendors, rp.name)
	}
	b, err := json.Marshal(g.answer("", group))
	if err != nil {
		return nil, err
	}
	tag := sha256.Sum256(b)
	g.tag = hex.EncodeToString(tag[:16])
	s.ahMu.Lock()
	if gen == s.ahGen { // nothing changed the site repository meanwhile
		if s.ahCache == nil {
			s.ahCache = map[string]*groupAnswer{}
		}
		s.ahCache[group] = g
	}
	s.ahMu.Unlock()
	return g, nil
}

// Header values the check-in sets on every answer, shared: net/http only
// reads them.
var (
	hdrCheckinCache = []string{"private, no-cache"}
	hdrJSON         = []string{"application/json"}
)

func (s *Server) handleCheckin(w http.ResponseWriter, r *http.Request) error {
	a, err := s.agentFromTLS(r)
	if err != nil {
		return err
	}
	if err := s.checkClone(r, a); err != nil {
		return err
	}
	s.seen.touch(a.ID, s.now())
	g, err := s.checkinGroup(r.Context(), a.Group)
	if err != nil {
		return err
	}
	h := w.Header()
	h["Cache-Control"] = hdrCheckinCache
	if inm := r.Header.Get("If-None-Match"); g.matches(inm, a.ID) {
		h["Etag"] = []string{inm}
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	b, err := json.Marshal(g.answer(a.ID, a.Group))
	if err != nil {
		return err
	}
	h["Etag"] = []string{g.etag(a.ID)}
	h["Content-Type"] = hdrJSON
	w.Write(append(b, '\n'))
	return nil
}
