package server

import (
	"errors"
	"net/http"
	"strings"

	"github.com/bulwarkhq/bulwark/internal/store"
)

// The console's user administration (admins: role, disable, enable,
// password reset) and every user's own password change.

const passwordPage = "/console/password"

type usersPage struct {
	Users []store.User
	Roles []string
	// Reset names a user whose temporary password, made just now, is
	// shown this once.
	Reset, Temporary string
	Next             string // URL of the next page, "" on the last
}

func (s *Server) consoleUsers(w http.ResponseWriter, r *http.Request) error {
	return s.renderUsers(w, r, "", "")
}

func (s *Server) renderUsers(w http.ResponseWriter, r *http.Request, reset, temporary string) error {
	us, err := s.st.ListUsers(r.Context())
	if err != nil {
		return err
	}
	p := &usersPage{Roles: []string{store.RoleViewer, store.RoleApprover, store.RoleAdmin}, Reset: reset, Temporary: temporary}
	pg, err := pageParams(r, pageSize)
	if err != nil {
		return err
	}
	var next string
	p.Users, next = paginate(us, func(u store.User) string { return u.Name }, pg)
	if next != "" {
		p.Next = "/console/users?after=" + next
	}
	s.render(w, r, http.StatusOK, "users", "Users", p)
	return nil
}

func (s *Server) consoleCreateUser(w http.ResponseWriter, r *http.Request) error {
	name, role := strings.TrimSpace(r.PostForm.Get("name")), r.PostForm.Get("role")
	if _, err := s.newUser(r.Context(), name, role, r.PostForm.Get("password")); err != nil {
		return err
	}
	s.audit(r, viewerFrom(r.Context()).Subject, "console", "user.create", name, "role "+role)
	http.Redirect(w, r, "/console/users", http.StatusSeeOther)
	return nil
}

// consoleChangeUser sets a user's role, or disables or enables it
// (action = role | disable | enable).
func (s *Server) consoleChangeUser(w http.ResponseWriter, r *http.Request) error {
	name, action := r.PathValue("name"), r.PathValue("action")
	var ch UserChange
	detail := ""
	switch action {
	case "role":
		ch.Role = r.PostForm.Get("role")
		detail = "role " + ch.Role
	case "disable", "enable":
		off := action == "disable"
		ch.Disabled = &off
	default:
		return errorf(http.StatusNotFound, "no user action %q: use role, disable or enable", action)
	}
	if _, err := s.changeUser(r.Context(), name, ch); err != nil {
		return err
	}
	v := viewerFrom(r.Context())
	s.audit(r, v.Subject, "console", "user."+action, name, detail)
	back := "/console/users"
	if v.Subject == "user:"+name && (action == "disable" || ch.Role != store.RoleAdmin) {
		back = "/console/" // no longer an admin (or signed out)
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
	return nil
}

// consoleResetPassword gives a user a random temporary password, shown on
// the answer page once; the user must replace it at the next sign-in.
func (s *Server) consoleResetPassword(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	pw, err := s.resetPassword(r.Context(), name, "")
	if err != nil {
		return err
	}
	s.audit(r, viewerFrom(r.Context()).Subject, "console", "user.password-reset", name, "")
	return s.renderUsers(w, r, name, pw)
}

type passwordForm struct {
	Forced bool
	Error  string
}

// consolePassword is where users change their own password; a user whose
// password an admin reset is sent here and can go nowhere else until done.
func (s *Server) consolePassword(w http.ResponseWriter, r *http.Request) error {
	v := viewerFrom(r.Context())
	kind, name, _ := strings.Cut(v.Subject, ":")
	if kind != "user" {
		return errorf(http.StatusBadRequest, "signed in with an API token, which has no password")
	}
	if r.Method == http.MethodGet {
		s.render(w, r, http.StatusOK, "password", "Change password", &passwordForm{Forced: v.MustChange})
		return nil
	}
	current, pw, again := r.PostForm.Get("current"), r.PostForm.Get("new"), r.PostForm.Get("again")
	fail := func(code int, msg string) error {
		s.render(w, r, code, "password", "Change password", &passwordForm{Forced: v.MustChange, Error: msg})
		return nil
	}
	if !s.signinAllowed(r, name) {
		return fail(http.StatusTooManyRequests, "too many attempts: wait a minute and try again")
	}
	if _, err := s.checkUser(r.Context(), name, current); err != nil {
		var he *httpError
		if errors.As(err, &he) {
			return fail(http.StatusUnauthorized, "the current password is wrong")
		}
		return err
	}
	switch {
	case pw != again:
		return fail(http.StatusBadRequest, "the new password and its repetition differ")
	case pw == current:
		return fail(http.StatusBadRequest, "choose a password other than the current one")
	}
	if err := checkPassword(pw); err != nil {
		var he *httpError
		errors.As(err, &he)
		return fail(http.StatusBadRequest, he.msg)
	}
	h, err := hashPassword(pw)
	if err != nil {
		return err
	}
	if err := s.st.SetUserPassword(r.Context(), name, h, false); err != nil {
		return err
	}
	// Every other session of the user ends; this one is replaced by a
	// fresh one (a new cookie and CSRF token).
	if err := s.st.DeleteSessionsOf(r.Context(), v.Subject); err != nil {
		return err
	}
	if err := s.startSession(w, r, v.Subject, v.Role); err != nil {
		return err
	}
	s.audit(r, v.Subject, "console", "user.password-change", name, "")
	http.Redirect(w, r, "/console/", http.StatusSeeOther)
	return nil
}
