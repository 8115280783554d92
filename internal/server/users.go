package server

import (
	"context"
	"errors"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/bulwarkhq/bulwark/internal/store"
)

// Console passwords: at least 12 characters; at most 1024 bytes, which
// bounds the work a sign-in form can ask for (password.go hashes them).
const (
	minPasswordLen = 12
	maxPasswordLen = 1024
	// FirstAdminUser is the user made at first start.
	FirstAdminUser = "admin"
)

var userPattern = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9][a-z0-9._@-]{0,63}$`) })

func checkPassword(pw string) error {
	if utf8.RuneCountInString(pw) < minPasswordLen || len(pw) > maxPasswordLen {
		return errorf(http.StatusBadRequest, "password: use %d characters to %d bytes", minPasswordLen, maxPasswordLen)
	}
	return nil
}

// newUser stores a user with an argon2id hash of password.
func (s *Server) newUser(ctx context.Context, name, role, password string) (*store.User, error) {
	if !userPattern().MatchString(name) {
		return nil, errorf(http.StatusBadRequest, "user name %q: use 1 to 64 lowercase letters, digits, '.', '_', '@' or '-'", name)
	}
	if _, ok := roleRank[role]; !ok {
		return nil, errorf(http.StatusBadRequest, "role %q: use admin, approver or viewer", role)
	}
	if err := checkPassword(password); err != nil {
		return nil, err
	}
	h, err := hashPassword(password)
	if err != nil {
		return nil, err
	}
	u := &store.User{Name: name, Role: role, Hash: h, CreatedAt: s.now().UTC()}
	if err := s.st.CreateUser(ctx, u); err != nil {
		return nil, storeErr(err, "user "+name)
	}
	return u, nil
}

// firstAdmin makes the first admin user with a random password, or gives
// it a new one when a first start that did not finish made it already.
func (s *Server) firstAdmin(ctx context.Context) (string, error) {
	password := randomString(15) // 24 characters, 120 random bits
	_, err := s.newUser(ctx, FirstAdminUser, store.RoleAdmin, password)
	var he *httpError
	if errors.As(err, &he) && he.code == http.StatusConflict {
		h, herr := hashPassword(password)
		if herr != nil {
			return "", herr
		}
		err = s.st.SetUserPassword(ctx, FirstAdminUser, h, false)
	}
	return password, err
}

// dummyHash is compared against when a user does not exist, so a sign-in
// takes as long for an unknown name as for a wrong password.
var dummyHash = sync.OnceValue(func() string {
	h, _ := hashPassword("bulwark-no-such-user")
	return h
})

// checkUser returns the user when name and password match an enabled user.
// A hash from before argon2id (or with weaker parameters) is replaced now
// that the password is known; a failure to replace it is logged and does
// not refuse the sign-in.
func (s *Server) checkUser(ctx context.Context, name, password string) (*store.User, error) {
	u, err := s.st.User(ctx, name)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	hash := dummyHash()
	if u != nil {
		hash = u.Hash
	}
	ok, stale := verifyPassword(hash, password)
	if !ok || u == nil || u.DisabledAt != nil {
		return nil, errorf(http.StatusUnauthorized, "wrong user name or password")
	}
	if stale {
		if h, err := hashPassword(password); err != nil {
			s.log.Error("rehash password", "user", u.Name, "err", err)
		} else if err := s.st.SetUserPassword(ctx, u.Name, h, u.MustChange); err != nil {
			s.log.Error("rehash password", "user", u.Name, "err", err)
		} else {
			s.log.Info("password hash upgraded to argon2id", "user", u.Name)
			u.Hash = h
		}
	}
	return u, nil
}

// remoteHost is the client's address without the port.
func remoteHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// audit records one administrative action. A failure to record is logged
// and does not undo the action, which has already happened.
func (s *Server) audit(r *http.Request, actor, via, action, target, detail string) {
	e := &store.AuditEntry{At: s.now().UTC(), Actor: actor, Via: via, Action: action, Target: target, Detail: detail, Remote: remoteHost(r)}
	if err := s.st.AddAudit(context.WithoutCancel(r.Context()), e); err != nil {
		s.log.Error("audit log", "action", action, "err", err)
	}
}

// auditNote lets an API handler say what its write changed (the audit
// entry's detail); withRole puts one in the request's context.
type auditNote struct{ detail string }

type auditNoteKey struct{}

// noteAudit sets the detail of the audit entry of this API write.
func noteAudit(ctx context.Context, detail string) {
	if n, ok := ctx.Value(auditNoteKey{}).(*auditNote); ok {
		n.detail = detail
	}
}

// auditAPI records a successful API write by the token that made it, with
// the detail its handler noted (else the query).
func (s *Server) auditAPI(r *http.Request, t *store.Token, detail string) {
	action := r.Pattern // "METHOD /path/{pattern}"
	if detail == "" && r.URL.RawQuery != "" {
		detail = "query " + r.URL.RawQuery
	}
	s.audit(r, "token:"+t.ID, "api", action, r.URL.Path, detail)
}

// UserRequest creates a console user.
type UserRequest struct {
	Name     string `json:"name"`
	Role     string `json:"role"`
	Password string `json:"password"`
}

// UserChange changes a user's role, or disables or enables it; fields left
// out stay as they are.
type UserChange struct {
	Role     string `json:"role,omitempty"`
	Disabled *bool  `json:"disabled,omitempty"`
}

// PasswordReset gives a user a temporary password, which the user must
// replace at the next sign-in. Empty: the server makes a random one.
type PasswordReset struct {
	Password string `json:"password,omitempty"`
}

// PasswordResetResponse carries the temporary password, shown this once.
type PasswordResetResponse struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

// changeUser applies ch to user name. Disabling a user ends its sessions;
// a change of role counts from the user's next request. The last enabled
// admin user can be neither demoted nor disabled.
func (s *Server) changeUser(ctx context.Context, name string, ch UserChange) (*store.User, error) {
	if ch.Role == "" && ch.Disabled == nil {
		return nil, errorf(http.StatusBadRequest, "change: give role (admin, approver or viewer) or disabled (true or false)")
	}
	u, err := s.st.User(ctx, name)
	if err != nil {
		return nil, storeErr(err, "user "+name)
	}
	role, disabled := u.Role, u.DisabledAt
	if ch.Role != "" {
		if _, ok := roleRank[ch.Role]; !ok {
			return nil, errorf(http.StatusBadRequest, "role %q: use admin, approver or viewer", ch.Role)
		}
		role = ch.Role
	}
	if ch.Disabled != nil {
		disabled = nil
		if *ch.Disabled {
			now := s.now().UTC()
			disabled = &now
		}
	}
	if err := s.st.SetUserAccess(ctx, name, role, disabled); errors.Is(err, store.ErrLastAdminUser) {
		return nil, errorf(http.StatusConflict, "user %s is the last enabled admin user; make another admin user first", name)
	} else if err != nil {
		return nil, storeErr(err, "user "+name)
	}
	if disabled != nil {
		if err := s.st.DeleteSessionsOf(ctx, "user:"+name); err != nil {
			return nil, err
		}
	}
	return s.st.User(ctx, name)
}

// userChangeNote says what a change set, for the audit log.
func userChangeNote(ch UserChange) string {
	var parts []string
	if ch.Role != "" {
		parts = append(parts, "role "+ch.Role)
	}
	if ch.Disabled != nil {
		parts = append(parts, map[bool]string{true: "disabled", false: "enabled"}[*ch.Disabled])
	}
	return strings.Join(parts, ", ")
}

// resetPassword gives user name a temporary password (password, or a
// random one when empty) that must be changed at the next sign-in, and
// ends the user's sessions.
func (s *Server) resetPassword(ctx context.Context, name, password string) (string, error) {
	if _, err := s.st.User(ctx, name); err != nil {
		return "", storeErr(err, "user "+name)
	}
	if password == "" {
		password = randomString(15) // 24 characters, 120 random bits
	} else if err := checkPassword(password); err != nil {
		return "", err
	}
	h, err := hashPassword(password)
	if err != nil {
		return "", err
	}
	if err := s.st.SetUserPassword(ctx, name, h, true); err != nil {
		return "", storeErr(err, "user "+name)
	}
	if err := s.st.DeleteSessionsOf(ctx, "user:"+name); err != nil {
		return "", err
	}
	return password, nil
}

func (s *Server) usersRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/users", s.withRole(store.RoleAdmin, func(w http.ResponseWriter, r *http.Request) error {
		pg, err := pageParams(r, defaultAPIPage)
		if err != nil {
			return err
		}
		us, err := s.st.ListUsers(r.Context())
		if err != nil {
			return err
		}
		us, next := paginate(us, func(u store.User) string { return u.Name }, pg)
		writeJSON(w, http.StatusOK, listAnswer("users", us, next))
		return nil
	}))
	mux.HandleFunc("POST /api/v1/users", s.withRole(store.RoleAdmin, func(w http.ResponseWriter, r *http.Request) error {
		var req UserRequest
		if err := decodeBody(w, r, maxAdminBody, &req); err != nil {
			return err
		}
		u, err := s.newUser(r.Context(), req.Name, req.Role, req.Password)
		if err != nil {
			return err
		}
		noteAudit(r.Context(), "user "+u.Name+" role "+u.Role)
		writeJSON(w, http.StatusCreated, u)
		return nil
	}))
	mux.HandleFunc("PATCH /api/v1/users/{name}", s.withRole(store.RoleAdmin, func(w http.ResponseWriter, r *http.Request) error {
		var ch UserChange
		if err := decodeBody(w, r, maxAdminBody, &ch); err != nil {
			return err
		}
		u, err := s.changeUser(r.Context(), r.PathValue("name"), ch)
		if err != nil {
			return err
		}
		noteAudit(r.Context(), userChangeNote(ch))
		writeJSON(w, http.StatusOK, u)
		return nil
	}))
	mux.HandleFunc("POST /api/v1/users/{name}/password", s.withRole(store.RoleAdmin, func(w http.ResponseWriter, r *http.Request) error {
		var req PasswordReset
		if r.ContentLength != 0 {
			if err := decodeBody(w, r, maxAdminBody, &req); err != nil {
				return err
			}
		}
		pw, err := s.resetPassword(r.Context(), r.PathValue("name"), req.Password)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, PasswordResetResponse{User: r.PathValue("name"), Password: pw})
		return nil
	}))
	mux.HandleFunc("GET /api/v1/audit", s.withRole(store.RoleAdmin, func(w http.ResponseWriter, r *http.Request) error {
		es, next, err := s.auditList(r)
		if err != nil {
			return err
		}
		resp := map[string]any{"entries": es}
		if next != "" {
			resp["next"] = next
		}
		writeJSON(w, http.StatusOK, resp)
		return nil
	}))
	mux.HandleFunc("GET /api/v1/compliance", s.withRole(store.RoleViewer, s.apiCompliance))
}

// auditList reads one page of the audit log as the request asks (before=ID,
// limit=N) and the cursor of the next page ("" on the last).
func (s *Server) auditList(r *http.Request) ([]store.AuditEntry, string, error) {
	before, limit, err := beforePage(r, 100)
	if err != nil {
		return nil, "", err
	}
	es, err := s.st.ListAudit(r.Context(), before, limit)
	if err != nil {
		return nil, "", err
	}
	if len(es) == limit {
		return es, strconv.FormatInt(es[len(es)-1].ID, 10), nil
	}
	return es, "", nil
}

// beforePage reads a newest-first list's cursor (before=ID) and limit
// (default def).
func beforePage(r *http.Request, def int) (before int64, limit int, err error) {
	limit = def
	q := r.URL.Query()
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > 1000 {
			return 0, 0, errorf(http.StatusBadRequest, "limit %q: use 1 to 1000", v)
		}
	}
	if v := q.Get("before"); v != "" {
		if before, err = strconv.ParseInt(v, 10, 64); err != nil || before < 1 {
			return 0, 0, errorf(http.StatusBadRequest, "before %q: use the next value of the previous page", v)
		}
	}
	return before, limit, nil
}
