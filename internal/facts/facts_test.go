package facts

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const statusFixture = `Package: libssl3
Status: install ok installed
Priority: optional
Architecture: amd64
Multi-Arch: same
Version: 3.0.11-1~deb12u2
Description: Secure Sockets Layer toolkit
 This package is part of the OpenSSL project.
 .
 More text.

Package: libssl3
Status: install ok installed
Architecture: i386
Version: 3.0.9-1

Package: half
Status: install ok unpacked
Architecture: all
Version: 1.0

Package: gone
Status: deinstall ok config-files
Architecture: all
Version: 2.0

Package: pinned
Status: hold ok installed
Architecture: all
Version: 4.2
`

// writeTree builds a directory root with the given files (path relative to
// root → content).
func writeTree(t testing.TB, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, body := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func newMachine(t testing.TB, root string) *Machine {
	t.Helper()
	m, err := New(Config{Root: root, Arch: "amd64", Installed: []string{"BW-2026-0001"}})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMachineDirectoryRoot(t *testing.T) {
	root := writeTree(t, map[string]string{
		"etc/os-release":      "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n",
		"etc/hostname":        "web-1\n",
		"etc/machine-id":      "0123456789abcdef0123456789abcdef\n",
		"var/lib/dpkg/status": statusFixture,
	})
	m := newMachine(t, root)
	if id, v := m.OSRelease(); id != "debian" || v != "12" {
		t.Errorf("OSRelease = %q, %q; want debian, 12", id, v)
	}
	if a := m.Arch(); a != "amd64" {
		t.Errorf("Arch = %q", a)
	}
	tests := []struct {
		name      string
		installed bool
		version   string
	}{
		{"libssl3", true, "3.0.11-1~deb12u2"}, // native arch wins
		{"libssl3:i386", true, "3.0.9-1"},
		{"libssl3:arm64", false, ""},
		{"half", false, ""},     // unpacked, not configured
		{"gone", false, ""},     // config files only
		{"pinned", true, "4.2"}, // held, still installed
		{"absent", false, ""},
	}
	for _, tt := range tests {
		ok, v, err := m.DebPackage(tt.name)
		if err != nil || ok != tt.installed || v != tt.version {
			t.Errorf("DebPackage(%q) = %v, %q, %v; want %v, %q", tt.name, ok, v, err, tt.installed, tt.version)
		}
	}
	if _, _, err := m.DebPackage("Bad Name"); err == nil || !strings.Contains(err.Error(), "Bad Name") {
		t.Errorf("DebPackage(bad name) error = %v; want one naming the input", err)
	}
	if !m.UpdateInstalled("BW-2026-0001") || m.UpdateInstalled("BW-2026-0002") {
		t.Error("UpdateInstalled does not follow the configured set")
	}
	m.SetInstalled([]string{"BW-2026-0002"})
	if m.UpdateInstalled("BW-2026-0001") || !m.UpdateInstalled("BW-2026-0002") {
		t.Error("UpdateInstalled does not follow SetInstalled")
	}

	inv, err := m.Inventory()
	if err != nil {
		t.Fatal(err)
	}
	if inv.OSID != "debian" || inv.OSVersionID != "12" || inv.OSPrettyName != "Debian GNU/Linux 12 (bookworm)" ||
		inv.Hostname != "web-1" || inv.MachineID != "0123456789abcdef0123456789abcdef" || inv.Arch != "amd64" || inv.Kernel != "" {
		t.Errorf("Inventory = %+v", inv)
	}
	var names []string
	for _, p := range inv.Packages {
		names = append(names, p.Name+":"+p.Arch+"="+p.Version)
	}
	if got, want := strings.Join(names, " "), "libssl3:amd64=3.0.11-1~deb12u2 libssl3:i386=3.0.9-1 pinned:all=4.2"; got != want {
		t.Errorf("Inventory packages = %s; want %s", got, want)
	}

	// The status database is read again when it changes.
	p := filepath.Join(root, "var/lib/dpkg/status")
	if err := os.WriteFile(p, []byte("Package: absent\nStatus: install ok installed\nVersion: 1:2.0-1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if ok, v, err := m.DebPackage("absent"); !ok || v != "1:2.0-1" || err != nil {
		t.Errorf("after the status changed: DebPackage(absent) = %v, %q, %v", ok, v, err)
	}
}

// TestMachineReadsDpkgJournal: after an interrupted dpkg the latest
// package states are only in var/lib/dpkg/updates/; they win over status.
func TestMachineReadsDpkgJournal(t *testing.T) {
	root := writeTree(t, map[string]string{
		"var/lib/dpkg/status":        "Package: foo\nStatus: install ok installed\nArchitecture: all\nVersion: 1.0\n\nPackage: bar\nStatus: install ok installed\nArchitecture: all\nVersion: 3\n",
		"var/lib/dpkg/updates/0000":  "Package: foo\nStatus: install ok half-installed\nArchitecture: all\nVersion: 2.0\n",
		"var/lib/dpkg/updates/tmp.i": "garbage that dpkg is still writing",
	})
	m := newMachine(t, root)
	if ok, v, err := m.DebPackage("foo"); ok || err != nil {
		t.Errorf("DebPackage(foo) = %v, %q, %v; want not installed (the journal says half-installed)", ok, v, err)
	}
	if ok, v, _ := m.DebPackage("bar"); !ok || v != "3" {
		t.Errorf("DebPackage(bar) = %v, %q", ok, v)
	}
	// A later journal entry is seen without the status file changing.
	if err := os.WriteFile(filepath.Join(root, "var/lib/dpkg/updates/0001"), []byte("Package: foo\nStatus: install ok installed\nArchitecture: all\nVersion: 2.0\n\nPackage: new\nStatus: install ok installed\nArchitecture: all\nVersion: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if ok, v, _ := m.DebPackage("foo"); !ok || v != "2.0" {
		t.Errorf("after journal entry 0001: DebPackage(foo) = %v, %q; want 2.0 installed", ok, v)
	}
	if ok, _, _ := m.DebPackage("new"); !ok {
		t.Error("a package only in the journal is not seen")
	}
	os.WriteFile(filepath.Join(root, "var/lib/dpkg/updates/0002"), []byte("broken\n"), 0o644)
	if _, _, err := m.DebPackage("foo"); !errors.Is(err, ErrStatus) || !strings.Contains(err.Error(), "updates/0002") {
		t.Errorf("malformed journal entry: err = %v; want ErrStatus naming updates/0002", err)
	}
}

func TestMachineFallbacks(t *testing.T) {
	t.Run("usr_lib_os_release", func(t *testing.T) {
		m := newMachine(t, writeTree(t, map[string]string{"usr/lib/os-release": "ID=ubuntu\nVERSION_ID='24.04'\n"}))
		if id, v := m.OSRelease(); id != "ubuntu" || v != "24.04" {
			t.Errorf("OSRelease = %q, %q", id, v)
		}
	})
	t.Run("nothing", func(t *testing.T) {
		m := newMachine(t, t.TempDir())
		if id, v := m.OSRelease(); id != "" || v != "" {
			t.Errorf("OSRelease of an empty root = %q, %q; want empty", id, v)
		}
		if ok, _, err := m.DebPackage("libc6"); ok || err != nil {
			t.Errorf("DebPackage without a database = %v, %v; want false, nil", ok, err)
		}
		inv, err := m.Inventory()
		if err != nil || inv.OSID != "" || len(inv.Packages) != 0 {
			t.Errorf("Inventory of an empty root = %+v, %v", inv, err)
		}
	})
	t.Run("malformed_status", func(t *testing.T) {
		m := newMachine(t, writeTree(t, map[string]string{"var/lib/dpkg/status": "Package: a1\nnot a field\n"}))
		if _, _, err := m.DebPackage("a1"); !errors.Is(err, ErrStatus) || !strings.Contains(err.Error(), "line 2") {
			t.Errorf("DebPackage on a malformed database: err = %v; want ErrStatus naming line 2", err)
		}
	})
	t.Run("malformed_os_release", func(t *testing.T) {
		m := newMachine(t, writeTree(t, map[string]string{"etc/os-release": "ID=$(reboot)\n"}))
		if _, err := m.Inventory(); !errors.Is(err, ErrOSRelease) {
			t.Errorf("Inventory with a malformed os-release: err = %v; want ErrOSRelease", err)
		}
	})
	t.Run("relative_root", func(t *testing.T) {
		if _, err := New(Config{Root: "images/web"}); err == nil || !strings.Contains(err.Error(), "images/web") {
			t.Errorf("New(relative root) err = %v; want one naming it", err)
		}
	})
}

// TestThisMachine reads the real root: /etc/os-release, dpkg's database and
// dpkg --print-architecture, and checks them against dpkg-query.
func TestThisMachine(t *testing.T) {
	if _, err := os.Stat("/var/lib/dpkg/status"); err != nil {
		t.Skip("not a dpkg machine: ", err)
	}
	m, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	arch, err := exec.Command("dpkg", "--print-architecture").Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Arch(); got != strings.TrimSpace(string(arch)) {
		t.Errorf("Arch = %q; dpkg says %q", got, arch)
	}
	inv, err := m.Inventory()
	if err != nil {
		t.Fatal(err)
	}
	if inv.OSID == "" || inv.Kernel == "" || inv.Hostname == "" || len(inv.Packages) < 10 {
		t.Errorf("Inventory of this machine looks empty: %+v", inv)
	}
	out, err := exec.Command("dpkg-query", "-W", "-f", "${db:Status-Abbrev}${Package} ${Version}\n", "dpkg", "libc6").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		ok, v, err := m.DebPackage(f[1])
		if err != nil || !ok || v != f[2] {
			t.Errorf("DebPackage(%s) = %v, %q, %v; dpkg-query says %s", f[1], ok, v, err, line)
		}
	}
}

func TestParseOSRelease(t *testing.T) {
	tests := []struct {
		name, in string
		want     map[string]string
		err      string
	}{
		{"plain", "ID=debian\n", map[string]string{"ID": "debian"}, ""},
		{"double", `NAME="Debian GNU/Linux"`, map[string]string{"NAME": "Debian GNU/Linux"}, ""},
		{"single", `NAME='a "b" $c'`, map[string]string{"NAME": `a "b" $c`}, ""},
		{"escapes", `X="a \"q\" \$HOME \\ \` + "`" + `"`, map[string]string{"X": "a \"q\" $HOME \\ `"}, ""},
		{"concatenated", `X="a"'b'c`, map[string]string{"X": "abc"}, ""},
		{"comments_blank", "# c\n\n  ID=x  \n", map[string]string{"ID": "x"}, ""},
		{"empty_value", "VARIANT=\n", map[string]string{"VARIANT": ""}, ""},
		{"no_equals", "ID debian\n", nil, "line 1"},
		{"bad_key", "1ID=x\n", nil, "key must be"},
		{"unterminated", "ID=\"debian\n", nil, "unterminated double quote"},
		{"command_substitution", "ID=$(reboot)\n", nil, "unquoted"},
		{"expansion_in_quotes", "ID=\"$HOME\"\n", nil, "no expansion"},
		{"space_unquoted", "NAME=Debian GNU\n", nil, "quote the value"},
		{"too_big", "X=" + strings.Repeat("a", MaxOSReleaseSize), nil, "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseOSRelease(strings.NewReader(tt.in))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, ErrOSRelease) {
					t.Fatalf("err = %v; want ErrOSRelease containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %q; want %q", k, got[k], v)
				}
			}
			if len(got) != len(tt.want) {
				t.Errorf("got %d keys %v; want %d", len(got), got, len(tt.want))
			}
		})
	}
}

func TestParseStatusErrors(t *testing.T) {
	tests := []struct{ name, in, err string }{
		{"no_package", "Status: install ok installed\n", "no Package field"},
		{"no_colon", "Package: a1\nbroken\n", "line 2"},
		{"repeated_field", "Package: a1\nVersion: 1\nversion: 2\n", "repeated"},
		{"bad_name", "Package: ../etc\n", "package name"},
		{"leading_continuation", " orphan\n", "continuation"},
		{"long_line", "Package: a1\nDescription: " + strings.Repeat("x", maxStatusLine) + "\n", "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseStatus(strings.NewReader(tt.in))
			if err == nil || !errors.Is(err, ErrStatus) || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("err = %v; want ErrStatus containing %q", err, tt.err)
			}
		})
	}
	pkgs, err := ParseStatus(strings.NewReader(statusFixture))
	if err != nil || len(pkgs) != 5 {
		t.Fatalf("fixture: %d packages, %v", len(pkgs), err)
	}
}

func FuzzParseOSRelease(f *testing.F) {
	for _, s := range []string{"ID=debian\nVERSION_ID=\"12\"\n", `X='a'"b\$"c`, "# c\n\nA=\n", "ID=\"x", "A=$(b)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		kv, err := ParseOSRelease(strings.NewReader(s))
		if err != nil {
			if !errors.Is(err, ErrOSRelease) {
				t.Fatalf("error not ErrOSRelease: %v", err)
			}
			return
		}
		for k := range kv {
			if !validKey(k) {
				t.Fatalf("invalid key %q accepted", k)
			}
		}
	})
}

func FuzzParseStatus(f *testing.F) {
	for _, s := range []string{statusFixture, "Package: a1\n", "\n\n Package: x\n", "Package: a1\nVersion: 1\nversion: 2\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		pkgs, err := ParseStatus(strings.NewReader(s))
		if err != nil {
			if !errors.Is(err, ErrStatus) {
				t.Fatalf("error not ErrStatus: %v", err)
			}
			return
		}
		for _, p := range pkgs {
			if !validPackageName(p.Name) {
				t.Fatalf("invalid name %q accepted", p.Name)
			}
		}
	})
}
