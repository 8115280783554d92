package debtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func dpkgDeb(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command("dpkg-deb", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg-deb %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestBuildFieldsAndFiles(t *testing.T) {
	dir := t.TempDir()
	deb := Build(t, dir, Package{
		Name:        "bulwark-hello",
		Version:     "1:2.0-1~deb12u1",
		Arch:        "amd64",
		Depends:     "libc6 (>= 2.36)",
		Files:       map[string]string{"/usr/share/doc/bulwark-hello/hello": "hello\n", "/usr/bin/bulwark-hello": "#!/bin/sh\necho hi\n"},
		Modes:       map[string]os.FileMode{"/usr/bin/bulwark-hello": 0o755},
		Postinst:    "echo configured",
		Prerm:       "#!/bin/bash\necho removing\n",
		Description: "Says hello\nLonger text.\n\nSecond paragraph.",
	})
	if want := filepath.Join(dir, "bulwark-hello_2.0-1~deb12u1_amd64.deb"); deb != want {
		t.Fatalf("Build returned %s, want %s", deb, want)
	}
	for field, want := range map[string]string{
		"Package":      "bulwark-hello",
		"Version":      "1:2.0-1~deb12u1",
		"Architecture": "amd64",
		"Depends":      "libc6 (>= 2.36)",
		"Maintainer":   "Bulwark tests <tests@bulwark.invalid>",
	} {
		if got := strings.TrimSpace(dpkgDeb(t, "--field", deb, field)); got != want {
			t.Errorf("field %s = %q, want %q", field, got, want)
		}
	}
	desc := dpkgDeb(t, "--field", deb, "Description")
	if !strings.HasPrefix(desc, "Says hello\n Longer text.\n .\n Second paragraph.") {
		t.Errorf("Description = %q", desc)
	}

	contents := dpkgDeb(t, "--contents", deb)
	for _, want := range []string{
		"-rw-r--r-- root/root         6 ",
		"./usr/share/doc/bulwark-hello/hello",
		"-rwxr-xr-x root/root",
		"./usr/bin/bulwark-hello",
		"drwxr-xr-x root/root         0 ",
	} {
		if !strings.Contains(contents, want) {
			t.Errorf("--contents lacks %q:\n%s", want, contents)
		}
	}

	ctl := t.TempDir()
	dpkgDeb(t, "--control", deb, ctl)
	for name, want := range map[string]string{"postinst": "#!/bin/sh\necho configured\n", "prerm": "#!/bin/bash\necho removing\n"} {
		b, err := os.ReadFile(filepath.Join(ctl, name))
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != want {
			t.Errorf("%s = %q, want %q", name, b, want)
		}
	}
}

func TestBuildDefaults(t *testing.T) {
	deb := Build(t, t.TempDir(), Package{Name: "bulwark-empty", Version: "0.1"})
	if filepath.Base(deb) != "bulwark-empty_0.1_all.deb" {
		t.Fatalf("name %s", deb)
	}
	if got := strings.TrimSpace(dpkgDeb(t, "--field", deb, "Architecture")); got != "all" {
		t.Errorf("Architecture = %q, want all", got)
	}
	if got := strings.TrimSpace(dpkgDeb(t, "--field", deb, "Description")); got != "Bulwark test package bulwark-empty" {
		t.Errorf("Description = %q", got)
	}
	if out := dpkgDeb(t, "--field", deb); strings.Contains(out, "Depends:") {
		t.Errorf("Depends present without being asked:\n%s", out)
	}
}

// fatalTB records Fatalf instead of stopping, to show Build refuses bad input.
type fatalTB struct {
	testing.TB
	failed bool
}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.failed = true
	panic(f)
}

func TestBuildRefusesBadInput(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    Package
	}{
		{"uppercase name", Package{Name: "Hello", Version: "1"}},
		{"empty version", Package{Name: "hello", Version: ""}},
		{"relative file", Package{Name: "hello", Version: "1", Files: map[string]string{"usr/x": ""}}},
		{"dotdot file", Package{Name: "hello", Version: "1", Files: map[string]string{"/usr/../etc/x": ""}}},
		{"control dir file", Package{Name: "hello", Version: "1", Files: map[string]string{"/DEBIAN/postinst": ""}}},
		{"mode without file", Package{Name: "hello", Version: "1", Modes: map[string]os.FileMode{"/x": 0o755}}},
		{"version dpkg rejects", Package{Name: "hello", Version: "abc"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fatalTB{TB: t}
			func() {
				defer func() {
					if r := recover(); r != nil && r != any(f) {
						panic(r)
					}
				}()
				Build(f, t.TempDir(), tc.p)
			}()
			if !f.failed {
				t.Fatalf("Build accepted %+v", tc.p)
			}
		})
	}
}
