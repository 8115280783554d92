// Package debpkg reads what Bulwark needs to know about a Debian binary
// package (.deb) before it is published or installed: its Package, Version
// and Architecture, the packages it Pre-Depends on, and which maintainer
// scripts it carries. It reads the archive with pault.ag/go/debian and checks
// every field it returns against Debian policy's syntax, since a .deb is
// untrusted input until dpkg has it: a name, version or architecture that
// reaches a dpkg or apt argument is one of these checked strings.
//
// It does not unpack, install or verify signatures.
package debpkg

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"

	"pault.ag/go/debian/deb"
	"pault.ag/go/debian/dependency"
)

// Info is what a .deb says about itself in its control member.
type Info struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Arch    string `json:"arch"`
	// PreDepends names every package of the Pre-Depends field (each
	// alternative), without versions or architecture qualifiers.
	PreDepends []string `json:"pre_depends,omitempty"`
	// Scripts lists the maintainer scripts the package carries (preinst,
	// postinst, prerm, postrm, config), sorted.
	Scripts []string `json:"scripts,omitempty"`
}

// String is "name version arch", as publish and verify show it.
func (i Info) String() string { return i.Name + " " + i.Version + " " + i.Arch }

// Maximum sizes read from an archive's control member.
const (
	maxControlEntries = 1000
)

var (
	nameRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)
	versionRE = regexp.MustCompile(`^([0-9]+:)?[0-9][A-Za-z0-9.+~:-]*$`)
	archRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
)

// maintainer scripts dpkg runs (and debconf's config).
var scriptNames = []string{"config", "postinst", "postrm", "preinst", "prerm"}

// ErrNotDeb: the file is not a Debian binary package.
var ErrNotDeb = errors.New("not a Debian binary package")

// ReadFile reads the .deb at path.
func ReadFile(p string) (Info, error) {
	f, err := os.Open(p)
	if err != nil {
		return Info{}, err
	}
	defer f.Close()
	info, err := Read(f)
	if err != nil {
		return Info{}, fmt.Errorf("%s: %w", p, err)
	}
	return info, nil
}

// Read reads a .deb from r.
func Read(r io.ReaderAt) (info Info, err error) {
	// The archive readers below are third-party code fed untrusted bytes;
	// a panic in them is a malformed package, not a crash of the caller.
	defer func() {
		if p := recover(); p != nil {
			info, err = Info{}, fmt.Errorf("%w: malformed archive (%v)", ErrNotDeb, p)
		}
	}()
	d, err := deb.Load(r, "")
	if err != nil {
		return Info{}, fmt.Errorf("%w (want an ar archive with debian-binary, control.tar.* and data.tar.* members, as dpkg-deb --build makes): %v", ErrNotDeb, err)
	}
	defer d.Close()
	c := d.Control
	info = Info{Name: c.Package, Version: c.Version.String(), Arch: c.Architecture.String()}
	if err := Check(info.Name, info.Version, info.Arch); err != nil {
		return Info{}, err
	}
	if raw, ok := c.Values["Pre-Depends"]; ok && strings.TrimSpace(raw) != "" {
		dep, err := dependency.Parse(raw)
		if err != nil {
			return Info{}, fmt.Errorf("package %s: Pre-Depends %q: %v", info.Name, trunc(raw), err)
		}
		for _, rel := range dep.Relations {
			for _, p := range rel.Possibilities {
				if !slices.Contains(info.PreDepends, p.Name) {
					info.PreDepends = append(info.PreDepends, p.Name)
				}
			}
		}
	}
	scripts, err := controlScripts(d)
	if err != nil {
		return Info{}, fmt.Errorf("package %s: %w", info.Name, err)
	}
	info.Scripts = scripts
	return info, nil
}

// controlScripts lists the maintainer scripts in the control member.
func controlScripts(d *deb.Deb) ([]string, error) {
	for name, member := range d.ArContent {
		if !strings.HasPrefix(name, "control.") {
			continue
		}
		// Load has read this member once already.
		if _, err := member.Data.Seek(0, io.SeekStart); err != nil {
			return nil, fmt.Errorf("%w: control member %s: %v", ErrNotDeb, name, err)
		}
		tr, closer, err := member.Tarfile()
		if err != nil {
			return nil, fmt.Errorf("%w: control member %s: %v", ErrNotDeb, name, err)
		}
		defer closer.Close()
		var out []string
		for n := 0; ; n++ {
			if n > maxControlEntries {
				return nil, fmt.Errorf("%w: control member has more than %d entries", ErrNotDeb, maxControlEntries)
			}
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("%w: control member %s: %v", ErrNotDeb, name, err)
			}
			base := path.Clean(strings.TrimPrefix(h.Name, "./"))
			if h.Typeflag == tar.TypeReg && slices.Contains(scriptNames, base) && !slices.Contains(out, base) {
				out = append(out, base)
			}
		}
		slices.Sort(out)
		return out, nil
	}
	return nil, fmt.Errorf("%w: no control member", ErrNotDeb)
}

// Check refuses a package name, version or architecture that is not in
// Debian policy's syntax (and so could not be a dpkg argument safely).
func Check(name, version, arch string) error {
	switch {
	case len(name) > 200 || !nameRE.MatchString(name):
		return fmt.Errorf("package name %q: want lowercase letters, digits, '+', '-', '.'", trunc(name))
	case len(version) > 200 || !versionRE.MatchString(version):
		return fmt.Errorf("package %s: version %q: want a Debian version such as 1.2-1", name, trunc(version))
	case len(arch) > 64 || !archRE.MatchString(arch):
		return fmt.Errorf("package %s: architecture %q: want one such as all or amd64", name, trunc(arch))
	}
	return nil
}

func trunc(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
