// Package debtest builds real .deb packages with the real dpkg-deb, for the
// tests of other packages (the repository tool, the agent's dpkg installer).
//
// It is for tests only: it fails the test on any problem, trusts its caller,
// and must not be imported by non-test code.
package debtest

import (
	"debug/elf"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// Package describes one .deb to build.
type Package struct {
	Name, Version, Arch string            // Arch defaults to "all"
	Depends             string            // optional Depends: field
	PreDepends          string            // optional Pre-Depends: field
	Files               map[string]string // absolute install path → content, e.g. "/usr/share/doc/x/hello"
	Modes               map[string]os.FileMode
	// Modes optionally sets the mode of files in Files (default 0644), e.g.
	// 0755 for "/usr/bin/x".
	Postinst, Prerm string // optional maintainer scripts; "#!/bin/sh" is added when no #! line
	Description     string // one line or more; defaults to "Bulwark test package NAME"
}

var (
	nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)
	archRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*$`)
)

// Build writes NAME_VERSION_ARCH.deb (version without its epoch, as dpkg
// names files) into dir with dpkg-deb --build --root-owner-group, and returns
// its path. It fails t on any problem.
func Build(t testing.TB, dir string, p Package) string {
	t.Helper()
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Fatalf("debtest: dpkg-deb not found (install Debian package dpkg): %v", err)
	}
	if p.Arch == "" {
		p.Arch = "all"
	}
	if !nameRE.MatchString(p.Name) {
		t.Fatalf("debtest: package name %q: want lowercase letters, digits, '+', '-', '.' (at least two)", p.Name)
	}
	if p.Version == "" || strings.ContainsAny(p.Version, " \t\n/_") {
		t.Fatalf("debtest: package %s: version %q: want a Debian version such as 1.0-1", p.Name, p.Version)
	}
	if !archRE.MatchString(p.Arch) {
		t.Fatalf("debtest: package %s: architecture %q: want a dpkg architecture such as all or amd64", p.Name, p.Arch)
	}

	root := t.TempDir()
	files := make([]string, 0, len(p.Files))
	for name := range p.Files {
		files = append(files, name)
	}
	sort.Strings(files)
	for _, name := range files {
		if !path.IsAbs(name) || path.Clean(name) != name || name == "/" || strings.HasPrefix(name, "/DEBIAN") {
			t.Fatalf("debtest: package %s: file %q: want an absolute, clean path outside /DEBIAN", p.Name, name)
		}
		mode := os.FileMode(0o644)
		if m, ok := p.Modes[name]; ok {
			mode = m
		}
		dst := filepath.Join(root, filepath.FromSlash(name))
		mkdirs(t, root, path.Dir(name))
		writeFile(t, dst, p.Files[name], mode)
	}
	for name := range p.Modes {
		if _, ok := p.Files[name]; !ok {
			t.Fatalf("debtest: package %s: mode given for %q, which is not in Files", p.Name, name)
		}
	}

	mkdirs(t, root, "/DEBIAN")
	control := filepath.Join(root, "DEBIAN")
	writeFile(t, filepath.Join(control, "control"), p.control(), 0o644)
	for _, s := range []struct{ name, body string }{{"postinst", p.Postinst}, {"prerm", p.Prerm}} {
		if s.body == "" {
			continue
		}
		body := s.body
		if !strings.HasPrefix(body, "#!") {
			body = "#!/bin/sh\n" + body
		}
		if !strings.HasSuffix(body, "\n") {
			body += "\n"
		}
		writeFile(t, filepath.Join(control, s.name), body, 0o755)
	}

	v := p.Version
	if i := strings.Index(v, ":"); i >= 0 {
		v = v[i+1:]
	}
	out := filepath.Join(dir, p.Name+"_"+v+"_"+p.Arch+".deb")
	cmd := exec.Command("dpkg-deb", "--build", "--root-owner-group", root, out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("debtest: dpkg-deb --build %s: %v\n%s", p.Name, err, b)
	}
	return out
}

func (p Package) control() string {
	desc := p.Description
	if desc == "" {
		desc = "Bulwark test package " + p.Name
	}
	lines := strings.Split(strings.TrimRight(desc, "\n"), "\n")
	for i := 1; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) == "" {
			lines[i] = " ."
		} else {
			lines[i] = " " + lines[i]
		}
	}
	var b strings.Builder
	b.WriteString("Package: " + p.Name + "\n")
	b.WriteString("Version: " + p.Version + "\n")
	b.WriteString("Architecture: " + p.Arch + "\n")
	b.WriteString("Maintainer: Bulwark tests <tests@bulwark.invalid>\n")
	if p.PreDepends != "" {
		b.WriteString("Pre-Depends: " + p.PreDepends + "\n")
	}
	if p.Depends != "" {
		b.WriteString("Depends: " + p.Depends + "\n")
	}
	b.WriteString("Section: misc\nPriority: optional\n")
	b.WriteString("Description: " + strings.Join(lines, "\n") + "\n")
	return b.String()
}

// mkdirs creates root+dir and every directory between them with mode 0755
// whatever the umask (TempDir itself is 0700; a package's directories and
// DEBIAN must not be).
func mkdirs(t testing.TB, root, dir string) {
	t.Helper()
	cur := root
	if err := os.Chmod(cur, 0o755); err != nil {
		t.Fatalf("debtest: %v", err)
	}
	for _, part := range strings.Split(strings.Trim(dir, "/"), "/") {
		if part == "" {
			continue
		}
		cur = filepath.Join(cur, part)
		if err := os.Mkdir(cur, 0o755); err != nil && !os.IsExist(err) {
			t.Fatalf("debtest: %v", err)
		}
		if err := os.Chmod(cur, 0o755); err != nil {
			t.Fatalf("debtest: %v", err)
		}
	}
}

func writeFile(t testing.TB, name, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), mode); err != nil {
		t.Fatalf("debtest: %v", err)
	}
	if err := os.Chmod(name, mode); err != nil { // umask may have cleared bits
		t.Fatalf("debtest: %v", err)
	}
}

// AddShell gives the directory root a shell for maintainer scripts, which
// dpkg runs chrooted into it: busybox (static, from Debian's busybox-static,
// which scripts/setup.d/install.sh installs) as /bin/sh and the commands
// the test packages' scripts use. It fails t on any problem.
func AddShell(t testing.TB, root string) {
	t.Helper()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatalf("debtest: busybox not found (install Debian package busybox-static; scripts/test does): %v", err)
	}
	if f, err := elf.Open(bb); err == nil {
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Fatalf("debtest: %s is dynamically linked, so it cannot run in a root without libraries: install busybox-static", bb)
			}
		}
		f.Close()
	}
	b, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "busybox"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"sh", "mkdir", "touch", "sleep", "echo", "cat", "rm", "true"} {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", n)); err != nil {
			t.Fatal(err)
		}
	}
}

// DebianRoot returns a copy (in a new temporary directory) of the
// debootstrapped Debian 12 root that scripts/setup.d/lockdown.sh builds and
// names in BULWARK_TEST_DEBIAN_ROOT. Without the variable it fails t with
// what to run, or skips under go test -short.
func DebianRoot(t testing.TB) string {
	t.Helper()
	src := setupEnv(t, "BULWARK_TEST_DEBIAN_ROOT", "builds a Debian 12 root with debootstrap (scripts/setup.d/lockdown.sh)")
	dst := filepath.Join(t.TempDir(), "root")
	if out, err := exec.Command("cp", "-a", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("debtest: copy %s: %v\n%s", src, err, out)
	}
	return dst
}

// RealDebs returns the paths of the real Debian packages named, from the
// directory scripts/setup.d/install.sh downloads them into with apt-get
// download (BULWARK_TEST_DEBS); with no names, every one there.
func RealDebs(t testing.TB, names ...string) []string {
	t.Helper()
	dir := setupEnv(t, "BULWARK_TEST_DEBS", "downloads real Debian packages with apt-get download (scripts/setup.d/install.sh)")
	if len(names) == 0 {
		all, _ := filepath.Glob(filepath.Join(dir, "*.deb"))
		if len(all) == 0 {
			t.Fatalf("debtest: no .deb files in %s", dir)
		}
		return all
	}
	var out []string
	for _, n := range names {
		m, _ := filepath.Glob(filepath.Join(dir, n+"_*.deb"))
		if len(m) != 1 {
			t.Fatalf("debtest: %s: want one %s_*.deb, found %v", dir, n, m)
		}
		out = append(out, m[0])
	}
	return out
}

func setupEnv(t testing.TB, name, how string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		if testing.Short() {
			t.Skipf("%s is not set (go test -short)", name)
		}
		t.Fatalf("%s is not set: run scripts/test, which %s", name, how)
	}
	return v
}
