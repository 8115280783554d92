package lockdown

import (
	"context"
	"fmt"
	"path"
	"strings"
)

var unitDirs = []string{"/etc/systemd/system", "/run/systemd/system", "/usr/local/lib/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"}

// Service is the state of a systemd unit: disabled (no .wants/.requires
// links) or masked (also linked to /dev/null). Check asks `systemctl
// is-enabled` on the running system, otherwise reads the links under the
// root. A unit that is not installed is notapplicable.
type Service struct {
	Type  string `yaml:"type"`
	Unit  string `yaml:"unit"`
	State string `yaml:"state"`
}

// Validate checks the parameters.
func (r *Service) Validate() error {
	if r.Unit == "" || strings.ContainsAny(r.Unit, "/ \t") || !strings.Contains(r.Unit, ".") {
		return fmt.Errorf("unit %q must be a unit file name such as cups.service", r.Unit)
	}
	switch r.State {
	case "disabled", "masked":
	default:
		return fmt.Errorf("state %q must be disabled or masked", r.State)
	}
	return nil
}

// Describe says what the resource wants.
func (r *Service) Describe() string { return fmt.Sprintf("unit %s %s", r.Unit, r.State) }

func (r *Service) installed(t *Tree) (bool, error) {
	for _, d := range unitDirs {
		st, err := t.Lstat(path.Join(d, r.Unit))
		if err != nil {
			return false, err
		}
		if st.Exists() && !(st.Kind == KindSymlink && st.Target == "/dev/null") {
			return true, nil
		}
	}
	return false, nil
}

// links returns the .wants/.requires links that enable the unit.
func (r *Service) links(t *Tree) ([]string, error) {
	var out []string
	for _, suffix := range []string{".wants", ".requires"} {
		dirs, err := t.Glob("/etc/systemd/system/*" + suffix)
		if err != nil {
			return nil, err
		}
		for _, d := range dirs {
			st, err := t.Lstat(path.Join(d, r.Unit))
			if err != nil {
				return nil, err
			}
			if st.Kind == KindSymlink {
				out = append(out, path.Join(d, r.Unit))
			}
		}
	}
	return out, nil
}

func (r *Service) masked(t *Tree) (bool, error) {
	st, err := t.Lstat(path.Join("/etc/systemd/system", r.Unit))
	return st.Kind == KindSymlink && st.Target == "/dev/null", err
}

// Check reads the unit state.
func (r *Service) Check(ctx context.Context, env *Env) Verdict {
	v := Verdict{Expected: r.State}
	if env.Live != nil {
		state, err := env.Live.UnitState(ctx, r.Unit)
		if err != nil {
			return errorVerdict(err)
		}
		v.Actual, v.Where = state, "systemctl is-enabled"
		switch {
		case state == "not-found" || state == "":
			return Verdict{Result: ResultNotApplicable, Detail: r.Unit + " is not installed"}
		case state == "masked" || state == "masked-runtime":
			v.Result = ResultPass
		case r.State == "disabled" && (state == "disabled" || state == "static" || state == "indirect"):
			v.Result = ResultPass
		default:
			v.Result = ResultFail
		}
		return v
	}
	ok, err := r.installed(env.Tree)
	if err != nil {
		return errorVerdict(err)
	}
	masked, err := r.masked(env.Tree)
	if err != nil {
		return errorVerdict(err)
	}
	if !ok && !masked {
		return Verdict{Result: ResultNotApplicable, Detail: r.Unit + " is not installed"}
	}
	links, err := r.links(env.Tree)
	if err != nil {
		return errorVerdict(err)
	}
	switch {
	case masked:
		v.Actual = "masked"
	case len(links) > 0:
		v.Actual, v.Where = "enabled", strings.Join(links, ", ")
	default:
		v.Actual = "disabled"
	}
	if v.Actual == "masked" || v.Actual == r.State {
		v.Result = ResultPass
	} else {
		v.Result = ResultFail
	}
	return v
}

// Apply removes the enabling links and, to mask, links the unit to
// /dev/null. On the running system the engine then reloads systemd and stops
// the unit.
func (r *Service) Apply(_ context.Context, env *Env) error {
	links, err := r.links(env.Tree)
	if err != nil {
		return err
	}
	for _, l := range links {
		if err := env.Tree.Remove(l); err != nil {
			return err
		}
	}
	if r.State == "masked" {
		return env.Tree.Symlink(path.Join("/etc/systemd/system", r.Unit), "/dev/null")
	}
	return nil
}

// SessionRisk refuses to disable the SSH server from an SSH session.
func (r *Service) SessionRisk(s Session) string {
	if s.SSH && sshUnits[r.Unit] {
		return fmt.Sprintf("you are logged in over SSH (from %s); making %s %s stops new SSH logins", s.Client, r.Unit, r.State)
	}
	return ""
}

var sshUnits = map[string]bool{"ssh.service": true, "sshd.service": true, "ssh.socket": true}

// UnitName is the unit a service rule manages (the engine stops it after a
// live apply).
func (r *Service) UnitName() string { return r.Unit }
