package lockdown

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strings"
	"sync"
)

var packageName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]{1,99}$`) })

// PackageAbsent is a Debian package that must not be installed, read from
// the root's dpkg database. Apply does not remove packages: removal runs
// maintainer scripts and cannot be undone byte for byte, so it returns
// ErrManual with the command to run.
type PackageAbsent struct {
	Type    string `yaml:"type"`
	Package string `yaml:"package"`
}

// Validate checks the parameters.
func (r *PackageAbsent) Validate() error {
	if !packageName().MatchString(r.Package) {
		return fmt.Errorf("package %q must be a Debian package name such as telnet", r.Package)
	}
	return nil
}

// Describe says what the resource wants.
func (r *PackageAbsent) Describe() string { return "package " + r.Package + " not installed" }

// dpkgStatus returns the status of each package in /var/lib/dpkg/status.
func dpkgStatus(t *Tree) (map[string]string, error) {
	data, err := t.ReadFile("/var/lib/dpkg/status")
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, stanza := range strings.Split(string(data), "\n\n") {
		var name, status, version string
		for _, l := range strings.Split(stanza, "\n") {
			switch {
			case strings.HasPrefix(l, "Package:"):
				name = strings.TrimSpace(strings.TrimPrefix(l, "Package:"))
			case strings.HasPrefix(l, "Status:"):
				status = strings.TrimSpace(strings.TrimPrefix(l, "Status:"))
			case strings.HasPrefix(l, "Version:"):
				version = strings.TrimSpace(strings.TrimPrefix(l, "Version:"))
			}
		}
		if name != "" {
			out[name] = status + " " + version
		}
	}
	return out, nil
}

// Check reads the dpkg database.
func (r *PackageAbsent) Check(_ context.Context, env *Env) Verdict {
	st, err := dpkgStatus(env.Tree)
	if errors.Is(err, fs.ErrNotExist) {
		return Verdict{Result: ResultNotApplicable, Detail: "no dpkg database under the root"}
	}
	if err != nil {
		return errorVerdict(err)
	}
	v := Verdict{Expected: "not installed", Where: "/var/lib/dpkg/status"}
	s, ok := st[r.Package]
	f := strings.Fields(s)
	if !ok || len(f) < 3 || f[2] == "not-installed" || f[2] == "config-files" {
		v.Result, v.Actual = ResultPass, "not installed"
		return v
	}
	v.Result, v.Actual = ResultFail, "installed "+strings.Join(f[3:], " ")
	return v
}

// Apply does not remove the package; it says how.
func (r *PackageAbsent) Apply(context.Context, *Env) error {
	return fmt.Errorf("%w: remove it with `apt-get purge %s` after checking nothing you need depends on it", ErrManual, r.Package)
}

// SessionRisk refuses to remove the SSH server from an SSH session.
func (r *PackageAbsent) SessionRisk(s Session) string {
	if s.SSH && r.Package == "openssh-server" {
		return fmt.Sprintf("you are logged in over SSH (from %s); removing openssh-server stops new SSH logins", s.Client)
	}
	return ""
}
