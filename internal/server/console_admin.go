package server

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/store"
)

// The console's sync and token pages.

type syncPage struct {
	Repos []RepoInfo
	Runs  []store.SyncRun
	Next  string // cursor of the older page, "" on the last
}

func (s *Server) consoleSync(w http.ResponseWriter, r *http.Request) error {
	before, limit, err := beforePage(r, pageSize)
	if err != nil {
		return err
	}
	runs, err := s.st.ListSyncsBefore(r.Context(), before, limit)
	if err != nil {
		return err
	}
	p := &syncPage{Repos: s.Repositories(), Runs: runs}
	if len(runs) == limit {
		p.Next = strconv.FormatInt(runs[len(runs)-1].ID, 10)
	}
	s.render(w, r, http.StatusOK, "sync", "Sync", p)
	return nil
}

// consoleSyncNow queues a sync of every vendor repository.
func (s *Server) consoleSyncNow(w http.ResponseWriter, r *http.Request) error {
	select {
	case s.syncNow <- "":
	default:
		return errorf(http.StatusTooManyRequests, "syncs are already queued")
	}
	s.audit(r, viewerFrom(r.Context()).Subject, "console", "sync.queue", "", "")
	http.Redirect(w, r, "/console/sync", http.StatusSeeOther)
	return nil
}

type tokensPage struct {
	Tokens []store.Token
	Groups []store.Group
	Roles  []string
	Secret string // a token just made, shown this once
	Kind   string // its kind
	Next   string // URL of the next page, "" on the last
	Now    time.Time
}

func (s *Server) consoleTokens(w http.ResponseWriter, r *http.Request) error {
	return s.renderTokens(w, r, "", "")
}

func (s *Server) renderTokens(w http.ResponseWriter, r *http.Request, secret, kind string) error {
	ts, err := s.st.ListTokens(r.Context(), "")
	if err != nil {
		return err
	}
	gs, err := s.st.ListGroups(r.Context())
	if err != nil {
		return err
	}
	pg, err := pageParams(r, pageSize)
	if err != nil {
		return err
	}
	p := &tokensPage{Groups: gs, Roles: []string{store.RoleViewer, store.RoleApprover, store.RoleAdmin}, Secret: secret, Kind: kind, Now: s.now()}
	var next string
	if p.Tokens, next = paginate(ts, tokenOrder, pg); next != "" {
		p.Next = "/console/tokens?after=" + next
	}
	s.render(w, r, http.StatusOK, "tokens", "Tokens", p)
	return nil
}

// tokenOrder orders tokens oldest first (ids break ties).
func tokenOrder(t store.Token) string {
	return fmt.Sprintf("%016x\x00%s", t.CreatedAt.UnixMilli(), t.ID)
}

// consoleCreateToken makes an enrollment token for a group, or an API
// token with a role; its secret is shown on the answer page once.
func (s *Server) consoleCreateToken(w http.ResponseWriter, r *http.Request) error {
	kind := r.PostForm.Get("kind")
	if kind == "" {
		kind = store.KindEnroll
	}
	days, err := strconv.Atoi(strings.TrimSpace(r.PostForm.Get("days")))
	if err != nil || days < 0 || days > 3650 || (days == 0 && kind == store.KindEnroll) {
		return errorf(http.StatusBadRequest, "valid for %q days: use 1 to 3650 (0: never expires, for API tokens only)", r.PostForm.Get("days"))
	}
	t := &store.Token{Kind: kind, Name: strings.TrimSpace(r.PostForm.Get("name"))}
	if len(t.Name) > 200 {
		return errorf(http.StatusBadRequest, "note: at most 200 characters")
	}
	if days > 0 {
		exp := s.now().Add(time.Duration(days) * 24 * time.Hour).UTC()
		t.ExpiresAt = &exp
	}
	var detail string
	switch kind {
	case store.KindEnroll:
		t.Group = r.PostForm.Get("group")
		if _, err := s.st.Approvals(r.Context(), t.Group); err != nil {
			return storeErr(err, "group "+t.Group)
		}
		if t.MaxUses, err = strconv.Atoi(strings.TrimSpace(r.PostForm.Get("max_uses"))); err != nil || t.MaxUses < 0 || t.MaxUses > 1_000_000 {
			return errorf(http.StatusBadRequest, "uses %q: use 0 (unlimited) to 1000000", r.PostForm.Get("max_uses"))
		}
		detail = "enroll group " + t.Group
	case store.KindAPI:
		t.Role = r.PostForm.Get("role")
		if _, ok := roleRank[t.Role]; !ok {
			return errorf(http.StatusBadRequest, "role %q: use admin, approver or viewer", t.Role)
		}
		detail = "api role " + t.Role
	default:
		return errorf(http.StatusBadRequest, "kind %q: use enroll or api", kind)
	}
	secret, t, err := s.newToken(r.Context(), t)
	if err != nil {
		return err
	}
	s.audit(r, viewerFrom(r.Context()).Subject, "console", "token.create", t.ID, detail)
	return s.renderTokens(w, r, secret, kind)
}

func (s *Server) consoleRevokeToken(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if err := s.st.RevokeTokenKeepingAdmin(r.Context(), id, s.now()); errors.Is(err, store.ErrLastAdmin) {
		return errorf(http.StatusConflict, "token %s is the last admin token; create another admin token first", id)
	} else if err != nil {
		return storeErr(err, "token "+id)
	}
	s.audit(r, viewerFrom(r.Context()).Subject, "console", "token.revoke", id, "")
	http.Redirect(w, r, "/console/tokens", http.StatusSeeOther)
	return nil
}
