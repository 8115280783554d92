package server

import (
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
}

func (s *Server) consoleSync(w http.ResponseWriter, r *http.Request) error {
	runs, err := s.st.ListSyncs(r.Context(), 50)
	if err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "sync", "Sync", &syncPage{Repos: s.Repositories(), Runs: runs})
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
	Secret string // a token just made, shown this once
	Now    time.Time
}

func (s *Server) consoleTokens(w http.ResponseWriter, r *http.Request) error {
	return s.renderTokens(w, r, "")
}

func (s *Server) renderTokens(w http.ResponseWriter, r *http.Request, secret string) error {
	ts, err := s.st.ListTokens(r.Context(), "")
	if err != nil {
		return err
	}
	gs, err := s.st.ListGroups(r.Context())
	if err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "tokens", "Tokens", &tokensPage{Tokens: ts, Groups: gs, Secret: secret, Now: s.now()})
	return nil
}

// consoleCreateToken makes an enrollment token for a group; its secret is
// shown on the answer page once.
func (s *Server) consoleCreateToken(w http.ResponseWriter, r *http.Request) error {
	g := r.PostForm.Get("group")
	if _, err := s.st.Approvals(r.Context(), g); err != nil {
		return storeErr(err, "group "+g)
	}
	uses, err := strconv.Atoi(strings.TrimSpace(r.PostForm.Get("max_uses")))
	if err != nil || uses < 0 || uses > 1_000_000 {
		return errorf(http.StatusBadRequest, "uses %q: use 0 (unlimited) to 1000000", r.PostForm.Get("max_uses"))
	}
	days, err := strconv.Atoi(strings.TrimSpace(r.PostForm.Get("days")))
	if err != nil || days < 1 || days > 365 {
		return errorf(http.StatusBadRequest, "valid for %q days: use 1 to 365", r.PostForm.Get("days"))
	}
	exp := s.now().Add(time.Duration(days) * 24 * time.Hour).UTC()
	secret, t, err := s.newToken(r.Context(), &store.Token{Kind: store.KindEnroll, Name: strings.TrimSpace(r.PostForm.Get("name")), Group: g, MaxUses: uses, ExpiresAt: &exp})
	if err != nil {
		return err
	}
	s.audit(r, viewerFrom(r.Context()).Subject, "console", "token.create", t.ID, "enroll group "+g)
	return s.renderTokens(w, r, secret)
}

func (s *Server) consoleRevokeToken(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if err := s.st.RevokeToken(r.Context(), id, s.now()); err != nil {
		return storeErr(err, "token "+id)
	}
	s.audit(r, viewerFrom(r.Context()).Subject, "console", "token.revoke", id, "")
	http.Redirect(w, r, "/console/tokens", http.StatusSeeOther)
	return nil
}
