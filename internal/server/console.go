package server

import (
	"bytes"
	"context"
	"crypto/subtle"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/bulwarkhq/bulwark/internal/ratelimit"
	"github.com/bulwarkhq/bulwark/internal/store"
)

// The console: server-rendered pages under /console/, every template,
// style sheet and script embedded in the binary (nothing from a CDN, so it
// works on an air-gapped network), sessions in cookies that scripts and
// other sites cannot read or send, a synchronizer CSRF token in every form
// plus the browser's own cross-origin signals, and a Content-Security-Policy
// that allows nothing but this origin's own files.

//go:embed console/templates/*.html console/static/*
var consoleFS embed.FS

const (
	sessionCookie = "__Host-bulwark-session" // __Host-: Secure, Path=/, no Domain
	// A session ends 12 h after sign-in whatever happens (sessionTTL), and
	// after 30 minutes without a request (sessionIdle). Its last use is
	// written at most once a minute (sessionTouch).
	sessionTTL   = 12 * time.Hour
	sessionIdle  = 30 * time.Minute
	sessionTouch = time.Minute
	consoleCSP   = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
		"form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)

// consoleState is the console's part of the server.
type consoleState struct {
	once  sync.Once
	pages map[string]*template.Template
	cop   *http.CrossOriginProtection
	// Sign-in attempts per client address prefix and per user name
	// (signinAllowed).
	signinByAddr, signinByUser *ratelimit.Limiter
}

// viewer is who is signed in to a console request.
type viewer struct {
	Subject string // user:NAME or token:ID
	Name    string // what the page shows
	Role    string
	CSRF    string
	// MustChange: a user whose password an admin reset; every page but
	// the password change and sign-out is refused until it is changed.
	MustChange bool
	hash       string
}

func (v *viewer) can(role string) bool { return roleRank[v.Role] >= roleRank[role] }

type viewerKey struct{}

func viewerFrom(ctx context.Context) *viewer {
	v, _ := ctx.Value(viewerKey{}).(*viewer)
	return v
}

var consoleFuncs = template.FuncMap{
	"time": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"timep": func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"can":       func(v *viewer, role string) bool { return v != nil && v.can(role) },
	"hasPrefix": strings.HasPrefix,
}

func (s *Server) consolePages() map[string]*template.Template {
	s.console.once.Do(func() {
		base := template.Must(template.New("base").Funcs(consoleFuncs).ParseFS(consoleFS, "console/templates/base.html"))
		pages, err := fs.Glob(consoleFS, "console/templates/*.html")
		if err != nil {
			panic(err)
		}
		s.console.pages = map[string]*template.Template{}
		for _, p := range pages {
			name := strings.TrimSuffix(strings.TrimPrefix(p, "console/templates/"), ".html")
			if name == "base" {
				continue
			}
			s.console.pages[name] = template.Must(template.Must(base.Clone()).ParseFS(consoleFS, p))
		}
		s.console.cop = http.NewCrossOriginProtection()
		s.console.signinByAddr = newLimiter(signinAddrEvery, signinAddrBurst)
		s.console.signinByUser = newLimiter(signinUserEvery, signinUserBurst)
	})
	return s.console.pages
}

// consoleHeaders are on every console answer.
func consoleHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", consoleCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
}

// render writes a page; data is the page's own value.
func (s *Server) render(w http.ResponseWriter, r *http.Request, code int, page, title string, data any) {
	t := s.consolePages()[page]
	var buf bytes.Buffer
	err := t.ExecuteTemplate(&buf, "base", map[string]any{"Title": title, "Viewer": viewerFrom(r.Context()), "Page": page, "D": data})
	if err != nil {
		s.log.Error("console page", "page", page, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	consoleHeaders(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	w.Write(buf.Bytes())
}

// consoleFunc is a console handler that returns an error to show.
type consoleFunc func(w http.ResponseWriter, r *http.Request) error

// page wraps a console handler: a session with at least role is required
// (else the sign-in page), and every state change must come from this
// origin and carry the session's CSRF token.
func (s *Server) page(role string, f consoleFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		state := r.Method != http.MethodGet && r.Method != http.MethodHead
		// A state change a browser marks as cross-site is refused first,
		// whether or not it carried a session.
		if state && s.crossOrigin(r) {
			s.consoleError(w, r, errorf(http.StatusForbidden, "cross-origin request refused"))
			return
		}
		v, err := s.sessionOf(r)
		if err != nil {
			s.consoleError(w, r, err)
			return
		}
		if v == nil {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/console/signin", http.StatusSeeOther)
				return
			}
			s.consoleError(w, r, errorf(http.StatusUnauthorized, "sign in first"))
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), viewerKey{}, v))
		if state {
			r.Body = http.MaxBytesReader(w, r.Body, maxAdminBody)
			if err := s.checkCSRF(r, v); err != nil {
				s.consoleError(w, r, err)
				return
			}
		}
		if v.MustChange && r.URL.Path != passwordPage && r.URL.Path != "/console/signout" {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, passwordPage, http.StatusSeeOther)
				return
			}
			s.consoleError(w, r, errorf(http.StatusForbidden, "choose a new password first (%s)", passwordPage))
			return
		}
		if !v.can(role) {
			s.consoleError(w, r, errorf(http.StatusForbidden, "this needs the %s role; you have %s", role, v.Role))
			return
		}
		if err := f(w, r); err != nil {
			s.consoleError(w, r, err)
		}
	}
}

// crossOrigin reports a request the browser marks as cross-site or whose
// Origin is not this server (net/http's CrossOriginProtection).
func (s *Server) crossOrigin(r *http.Request) bool {
	s.consolePages()
	return s.console.cop.Check(r) != nil
}

// checkCSRF refuses a state change without the session's CSRF token.
func (s *Server) checkCSRF(r *http.Request, v *viewer) error {
	if err := r.ParseForm(); err != nil {
		return errorf(http.StatusBadRequest, "form: %v", err)
	}
	got := r.PostForm.Get("csrf")
	if v == nil || got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(v.CSRF)) != 1 {
		return errorf(http.StatusForbidden, "the form's CSRF token is missing or stale: reload the page and try again")
	}
	return nil
}

func (s *Server) consoleError(w http.ResponseWriter, r *http.Request, err error) {
	var he *httpError
	if !errors.As(err, &he) {
		s.log.Error("console request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		he = &httpError{code: http.StatusInternalServerError, msg: "internal error"}
	}
	s.render(w, r, he.code, "error", "Error", he.msg)
}

// sessionOf reads the session cookie; nil when there is none or it ended:
// past its absolute expiry, idle for sessionIdle (then it is deleted), its
// user disabled or gone.
func (s *Server) sessionOf(r *http.Request) (*viewer, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" || len(c.Value) > maxTokenLen {
		return nil, nil
	}
	hash := HashToken(c.Value)
	now := s.now()
	se, err := s.st.SessionByHash(r.Context(), hash, now)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	switch idle := now.Sub(se.SeenAt); {
	case idle >= sessionIdle:
		return nil, s.st.DeleteSession(r.Context(), hash)
	case idle >= sessionTouch:
		if err := s.st.TouchSession(r.Context(), hash, now); err != nil {
			return nil, err
		}
	}
	v := &viewer{Subject: se.Subject, Role: se.Role, CSRF: se.CSRF, hash: hash}
	kind, name, _ := strings.Cut(se.Subject, ":")
	v.Name = name
	switch kind {
	case "user":
		u, err := s.st.User(r.Context(), name)
		if errors.Is(err, store.ErrNotFound) || (err == nil && u.DisabledAt != nil) {
			return nil, nil
		} else if err != nil {
			return nil, err
		}
		v.Role = u.Role // a changed role counts at once
		v.MustChange = u.MustChange
	case "token":
		v.Name = "token " + name
	}
	return v, nil
}

// startSession makes a session for subject and sets its cookie.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, subject, role string) error {
	secret := randomString(32)
	now := s.now()
	se := &store.Session{Hash: HashToken(secret), Subject: subject, Role: role, CSRF: randomString(20), CreatedAt: now, ExpiresAt: now.Add(sessionTTL)}
	if err := s.st.CreateSession(r.Context(), se); err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: secret, Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, MaxAge: int(sessionTTL / time.Second)})
	return nil
}

// signinAllowed throttles sign-in attempts per client address prefix and
// per user name (limit.go), so guessing passwords costs time whoever is
// guessed at. The shared limiter never forgets a client that is still
// throttled, however many other keys arrive.
func (s *Server) signinAllowed(r *http.Request, name string) bool {
	s.consolePages()
	now := s.now()
	if !s.console.signinByAddr.Allow(clientKey(r), now) {
		return false
	}
	return name == "" || s.console.signinByUser.Allow(name, now)
}

func (s *Server) consoleSignin(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet {
		if v, _ := s.sessionOf(r); v != nil {
			http.Redirect(w, r, "/console/", http.StatusSeeOther)
			return
		}
		s.render(w, r, http.StatusOK, "signin", "Sign in", map[string]string{})
		return
	}
	if s.crossOrigin(r) {
		s.consoleError(w, r, errorf(http.StatusForbidden, "cross-origin request refused"))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		s.consoleError(w, r, errorf(http.StatusBadRequest, "form: %v", err))
		return
	}
	name, password, token := strings.TrimSpace(r.PostForm.Get("name")), r.PostForm.Get("password"), strings.TrimSpace(r.PostForm.Get("token"))
	fail := func(code int, msg string) {
		s.metrics.authFailures.Inc()
		s.render(w, r, code, "signin", "Sign in", map[string]string{"Error": msg, "Name": name})
	}
	if !s.signinAllowed(r, name) {
		fail(http.StatusTooManyRequests, "too many sign-in attempts: wait a minute and try again")
		return
	}
	var subject, role string
	next := "/console/"
	if token != "" {
		req := r.Clone(r.Context())
		req.Header.Set("Authorization", "Bearer "+token)
		t, err := s.authorize(req, store.RoleViewer)
		if err != nil {
			fail(http.StatusUnauthorized, "that API token is unknown, expired or revoked")
			return
		}
		subject, role = "token:"+t.ID, t.Role
	} else {
		u, err := s.checkUser(r.Context(), name, password)
		var he *httpError
		if errors.As(err, &he) {
			fail(he.code, he.msg)
			return
		} else if err != nil {
			s.consoleError(w, r, err)
			return
		}
		subject, role = "user:"+u.Name, u.Role
		if u.MustChange {
			next = passwordPage
		}
	}
	if err := s.startSession(w, r, subject, role); err != nil {
		s.consoleError(w, r, err)
		return
	}
	s.audit(r, subject, "console", "signin", "", "")
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *Server) consoleSignout(w http.ResponseWriter, r *http.Request) error {
	v := viewerFrom(r.Context())
	if err := s.st.DeleteSession(r.Context(), v.hash); err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	s.audit(r, v.Subject, "console", "signout", "", "")
	http.Redirect(w, r, "/console/signin", http.StatusSeeOther)
	return nil
}

func (s *Server) consoleStatic(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	b, err := consoleFS.ReadFile("console/static/" + name)
	if err != nil || strings.Contains(name, "/") {
		http.NotFound(w, r)
		return
	}
	consoleHeaders(w)
	switch {
	case strings.HasSuffix(name, ".css"):
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
	case strings.HasSuffix(name, ".js"):
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	case strings.HasSuffix(name, ".svg"):
		w.Header().Set("Content-Type", "image/svg+xml")
	}
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Write(b)
}
