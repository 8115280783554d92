package debpkg

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/debtest"
)

// Real Debian packages from scripts/setup.d/install.sh: libpam-modules
// pre-depends on libpam-modules-bin, ca-certificates carries scripts.
func TestReadRealDebs(t *testing.T) {
	debs := debtest.RealDebs(t)
	seen := map[string]Info{}
	for _, p := range debs {
		info, err := ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		// The file name apt-get download gives is NAME_VERSION_ARCH.deb
		// (with the epoch's ':' escaped).
		want := strings.TrimSuffix(filepath.Base(p), ".deb")
		got := info.Name + "_" + strings.ReplaceAll(info.Version, ":", "%3a") + "_" + info.Arch
		if got != want {
			t.Errorf("%s: read %s", want, got)
		}
		seen[info.Name] = info
	}
	if m, ok := seen["libpam-modules"]; ok && !slices.Contains(m.PreDepends, "libpam-modules-bin") {
		t.Errorf("libpam-modules pre-depends = %v, want libpam-modules-bin among them", m.PreDepends)
	}
	if c, ok := seen["ca-certificates"]; ok && !slices.Contains(c.Scripts, "postinst") {
		t.Errorf("ca-certificates scripts = %v, want a postinst", c.Scripts)
	}
}

func TestReadBuilt(t *testing.T) {
	p := debtest.Build(t, t.TempDir(), debtest.Package{Name: "bw-x", Version: "1:2.0-1", Postinst: "true"})
	info, err := ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if info.String() != "bw-x 1:2.0-1 all" && info.String() != "bw-x 1:2.0-1 amd64" {
		t.Errorf("info = %s", info)
	}
	if !slices.Equal(info.Scripts, []string{"postinst"}) || len(info.PreDepends) != 0 {
		t.Errorf("scripts %v pre-depends %v", info.Scripts, info.PreDepends)
	}
}

// A text file named .deb is refused, naming what a .deb is.
func TestReadRefusesText(t *testing.T) {
	p := filepath.Join(t.TempDir(), "fake_1.0_amd64.deb")
	os.WriteFile(p, []byte("this is not a package\n"), 0o644)
	_, err := ReadFile(p)
	if !errors.Is(err, ErrNotDeb) || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "ar archive") {
		t.Fatalf("err = %v, want ErrNotDeb naming the file and what is valid", err)
	}
}

func TestCheck(t *testing.T) {
	for _, tt := range []struct{ name, version, arch string }{
		{"-x", "1", "all"}, {"x", "--root=/", "all"}, {"x", "1", "a b"}, {"X", "1", "all"},
	} {
		if err := Check(tt.name, tt.version, tt.arch); err == nil {
			t.Errorf("Check(%q, %q, %q) accepted", tt.name, tt.version, tt.arch)
		}
	}
	if err := Check("libssl3", "3.0.22-1~deb12u2", "amd64"); err != nil {
		t.Error(err)
	}
}

// FuzzRead feeds arbitrary bytes to the .deb reader: it must return an
// error or an Info whose fields pass Check, never panic.
func FuzzRead(f *testing.F) {
	p := debtest.Build(f, f.TempDir(), debtest.Package{Name: "bw-seed", Version: "1.0", Postinst: "true"})
	b, err := os.ReadFile(p)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte("!<arch>\n"))
	f.Add([]byte("not a deb"))
	f.Add(b[:len(b)/2])
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := Read(bytes.NewReader(data))
		if err != nil {
			return
		}
		if err := Check(info.Name, info.Version, info.Arch); err != nil {
			t.Fatalf("Read returned %+v that fails Check: %v", info, err)
		}
	})
}
