package lockdown

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
)

// Session describes the login bulwark runs in, so that apply can refuse a
// change that would lock that person out.
type Session struct {
	// SSH is true when bulwark runs inside an SSH session.
	SSH bool
	// User is the account that logged in (SUDO_USER when run through sudo).
	User string
	// Client is the SSH client's address.
	Client string
	// KeyAuth is true when User has a non-empty authorized_keys file, so a
	// change to password logins leaves a way in.
	KeyAuth bool
}

// DetectSession reads the environment (getenv) and the root's passwd file.
// Outside an SSH session it returns the zero Session.
func DetectSession(getenv func(string) string, t *Tree) Session {
	conn := getenv("SSH_CONNECTION")
	if conn == "" {
		conn = getenv("SSH_CLIENT")
	}
	if conn == "" {
		return Session{}
	}
	s := Session{SSH: true, Client: strings.Fields(conn)[0]}
	s.User = getenv("SUDO_USER")
	if s.User == "" {
		s.User = getenv("USER")
	}
	if s.User == "" {
		s.User = getenv("LOGNAME")
	}
	if home := homeOf(t, s.User); home != "" {
		if data, err := t.ReadFile(path.Join(home, ".ssh/authorized_keys")); err == nil && len(strings.TrimSpace(string(data))) > 0 {
			s.KeyAuth = true
		}
	}
	return s
}

func homeOf(t *Tree, user string) string {
	data, err := t.ReadFile("/etc/passwd")
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Split(l, ":")
		if len(f) >= 6 && f[0] == user {
			return f[5]
		}
	}
	return ""
}

// RefusedError is an apply refused because rules would lock out the session
// it runs in.
type RefusedError struct {
	// Reasons maps rule id to why.
	Reasons map[string]string
}

func (e *RefusedError) Error() string {
	var sb strings.Builder
	sb.WriteString("refusing to apply rules that would lock out this SSH session (use --force to apply them anyway, or exclude them):")
	for _, id := range sortedKeys(e.Reasons) {
		fmt.Fprintf(&sb, "\n  %s: %s", id, e.Reasons[id])
	}
	return sb.String()
}

// SystemProber reads the running system's values in force.
type SystemProber struct {
	Cmd Commander
}

var _ Prober = SystemProber{}

// SSHD runs `sshd -T`.
func (p SystemProber) SSHD(ctx context.Context) (map[string]string, error) {
	out, err := p.Cmd.Run(ctx, "sshd", "-T")
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(l), " ")
		if k != "" {
			if _, dup := m[k]; !dup {
				m[k] = strings.TrimSpace(v)
			}
		}
	}
	return m, nil
}

// Sysctl reads /proc/sys.
func (p SystemProber) Sysctl(_ context.Context, key string) (string, error) {
	b, err := os.ReadFile("/proc/sys/" + strings.ReplaceAll(key, ".", "/"))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// UnitState runs `systemctl is-enabled`; "not-found" when the unit is not
// installed.
func (p SystemProber) UnitState(ctx context.Context, unit string) (string, error) {
	out, err := p.Cmd.Run(ctx, "systemctl", "is-enabled", unit)
	state := strings.TrimSpace(string(out))
	if err != nil && state == "" {
		if strings.Contains(err.Error(), "No such file") || strings.Contains(err.Error(), "not found") {
			return "not-found", nil
		}
		return "", err
	}
	return state, nil
}

// ModuleLoaded reads /proc/modules.
func (p SystemProber) ModuleLoaded(_ context.Context, name string) (bool, error) {
	b, err := os.ReadFile("/proc/modules")
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 0 && modNorm(f[0]) == modNorm(name) {
			return true, nil
		}
	}
	return false, nil
}

// Mounts reads /proc/self/mounts.
func (p SystemProber) Mounts(context.Context) (map[string][]string, error) {
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		return nil, err
	}
	m := map[string][]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 4 {
			m[f[1]] = strings.Split(f[3], ",")
		}
	}
	return m, nil
}
