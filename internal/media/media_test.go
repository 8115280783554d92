package media

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/tuf"
)

func TestCreateSelects(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name string
		sel  Selection
		want []string
	}{
		{"security", Selection{Security: true}, []string{"BW-1", "BW-2", "BW-3"}},
		{"all", Selection{All: true}, []string{"BW-1", "BW-2", "BW-3", "BW-4"}},
		{"group", Selection{Groups: []string{"web"}}, []string{"BW-2", "BW-3"}},
		{"classification", Selection{Classifications: []string{"feature"}}, []string{"BW-4"}},
		{"since", Selection{All: true, Since: "2026-11-14"}, []string{"BW-4"}},
		{"group and since", Selection{Groups: []string{"web"}, Since: "2026-11-14"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "m")
			o := CreateOptions{Out: out, Vendors: []Source{{Name: "debian", Dir: f.vendor, Root: f.root(f.vendor)}}, Select: tc.sel,
				Site: &Source{Dir: f.site, Root: f.root(f.site)}}
			m, err := Create(context.Background(), o)
			if tc.want == nil {
				if err == nil || !strings.Contains(err.Error(), "no update matches") {
					t.Fatalf("err = %v, want nothing selected", err)
				}
				if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
					t.Fatal("a failed create left its output")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, u := range m.Vendors[0].Updates {
				got = append(got, u.ID)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("chose %v, want %v", got, tc.want)
			}
			// Every update.json is carried (a sync reads them all); only
			// the chosen payloads are.
			var debs int
			for _, fe := range m.Files {
				if strings.HasSuffix(fe.Path, ".deb") {
					debs++
				}
			}
			if debs != len(tc.want) {
				t.Fatalf("%d payloads on the media, want %d", debs, len(tc.want))
			}
			rep, err := Verify(context.Background(), out, Trust{Vendors: f.pins()})
			if err != nil || !rep.OK() {
				t.Fatalf("verify: %v %v", err, rep.Err())
			}
		})
	}
	if _, err := Create(context.Background(), CreateOptions{Out: filepath.Join(t.TempDir(), "x"), Vendors: []Source{{Name: "debian", Dir: f.vendor, Root: f.root(f.vendor)}}}); err == nil || !strings.Contains(err.Error(), "choose the updates") {
		t.Fatalf("no selection: %v", err)
	}
}

// Two admins who make media from the same repository get the same bytes,
// directory and ISO alike.
func TestCreateIsByteIdentical(t *testing.T) {
	f := newFixture(t)
	a, b := f.create(Selection{Groups: []string{"web"}}), f.create(Selection{Groups: []string{"web"}})
	ta, tb := treeOf(t, a), treeOf(t, b)
	if !slices.Equal(ta, tb) {
		t.Fatalf("two creations differ:\n%s\n---\n%s", strings.Join(ta, "\n"), strings.Join(tb, "\n"))
	}
	isoA, isoB := filepath.Join(t.TempDir(), "a.iso"), filepath.Join(t.TempDir(), "b.iso")
	for _, p := range [][2]string{{a, isoA}, {b, isoB}} {
		if err := WriteISO(context.Background(), p[0], p[1], DefaultDate); err != nil {
			t.Fatal(err)
		}
	}
	ba, _ := os.ReadFile(isoA)
	bb, _ := os.ReadFile(isoB)
	if len(ba) == 0 || !bytes.Equal(ba, bb) {
		t.Fatalf("two ISO images of the same media differ (%d and %d bytes)", len(ba), len(bb))
	}
	// The image written while the media are made (CreateOptions.ISO, what
	// `media create --iso` does) is the same bytes, and nothing partial is
	// left next to it.
	isoC := filepath.Join(t.TempDir(), "c.iso")
	c := f.createISO(Selection{Groups: []string{"web"}}, isoC)
	if tc := treeOf(t, c); !slices.Equal(ta, tc) {
		t.Fatalf("media made with their image differ:\n%s\n---\n%s", strings.Join(ta, "\n"), strings.Join(tc, "\n"))
	}
	if bc, _ := os.ReadFile(isoC); !bytes.Equal(ba, bc) {
		t.Fatalf("the image written by Create (%d bytes) differs from WriteISO's (%d bytes)", len(bc), len(ba))
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(isoC), "*.partial*")); len(left) > 0 {
		t.Fatalf("left behind: %v", left)
	}
}

// treeOf lists every path with its mode, time and content hash.
func treeOf(t *testing.T, dir string) []string {
	var out []string
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dir, p)
		line := rel + " " + fi.Mode().String() + " " + fi.ModTime().UTC().Format(time.RFC3339)
		if !fi.IsDir() {
			_, sum, _ := hashFile(p, false)
			line += " " + sum
		}
		out = append(out, line)
		return nil
	})
	return out
}

// contentOf lists every file with its content hash.
func contentOf(t *testing.T, dir string) []string {
	var out []string
	for _, l := range treeOf(t, dir) {
		if f := strings.Fields(l); len(f) == 4 {
			out = append(out, f[0]+" "+f[3])
		}
	}
	return out
}

// The ISO is read back by xorriso itself and by Open, and verifies.
func TestISOReadBackVerifies(t *testing.T) {
	f := newFixture(t)
	dir := f.create(Selection{Security: true})
	iso := filepath.Join(t.TempDir(), "media.iso")
	if err := WriteISO(context.Background(), dir, iso, DefaultDate); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("xorriso", "-indev", iso, "-find", "/", "-type", "f").CombinedOutput()
	if err != nil {
		t.Fatalf("xorriso -find: %v\n%s", err, out)
	}
	for _, want := range []string{"'/MANIFEST.json'", "'/README.txt'", "'/lockdown/profiles.yaml'", "/vendors/debian/metadata/timestamp.json"} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("xorriso lists no %s:\n%s", want, out)
		}
	}
	if !IsISO(iso) || IsISO(filepath.Join(dir, ManifestFile)) {
		t.Fatal("IsISO is wrong")
	}
	d, closeFn, err := Open(context.Background(), iso)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	rep, err := Verify(context.Background(), d, Trust{Vendors: f.pins()})
	if err != nil || !rep.OK() || rep.Vendors[0].Payloads != 3 {
		t.Fatalf("verify the ISO's content: %v %v %+v", err, rep.Err(), rep.Vendors)
	}
	if !slices.Equal(contentOf(t, d), contentOf(t, dir)) {
		t.Fatal("the ISO's files are not the directory's")
	}
}

// Each way of tampering with media is refused, and the report says what
// and where.
func TestAttackTamperedMediaRefused(t *testing.T) {
	f := newFixture(t)
	good := f.create(Selection{Security: true})
	tsV := func() int64 {
		rep, _ := Verify(context.Background(), good, Trust{Vendors: f.pins()})
		return rep.Vendors[0].TimestampVersion
	}()
	other := filepath.Join(t.TempDir(), "other")
	or, err := tuf.Init(other, tuf.InitOptions{Name: "debian", BinBits: 3}, tuf.Options{})
	if err != nil {
		t.Fatal(err)
	}
	or.Close()
	for _, tc := range []struct {
		name  string
		harm  func(dir string)
		trust func(tr *Trust)
		where string
		what  string
	}{
		{name: "payload byte flipped", harm: func(d string) {
			p := findFile(t, d, "bar_2.0")
			b, _ := os.ReadFile(p)
			b[len(b)/2] ^= 1
			os.WriteFile(p, b, 0o644)
		}, where: "bar_2.0_all.deb", what: "changed after the media were made"},
		{name: "payload byte flipped and manifest rewritten", harm: func(d string) {
			p := findFile(t, d, "bar_2.0")
			b, _ := os.ReadFile(p)
			b[len(b)/2] ^= 1
			os.WriteFile(p, b, 0o644)
			rewriteManifest(t, d)
		}, where: "bar_2.0_all.deb", what: "is not the signed file"},
		{name: "older metadata version", trust: func(tr *Trust) { tr.Known = map[string]int64{"debian": tsV + 1} },
			where: "vendors/debian/metadata/timestamp.json", what: "rollback"},
		{name: "foreign root", harm: func(d string) {
			root, _ := os.ReadFile(filepath.Join(other, "metadata", "1.root.json"))
			os.WriteFile(filepath.Join(d, "vendors/debian/metadata/1.root.json"), root, 0o644)
			rewriteManifest(t, d)
		}, where: "vendors/debian/metadata/1.root.json", what: "a foreign root"},
		{name: "vendor not pinned", trust: func(tr *Trust) { tr.Vendors = map[string]string{} },
			where: "vendors/debian", what: "not trusted here"},
		{name: "missing payload", harm: func(d string) { os.Remove(findFile(t, d, "libfoo_1.2")) },
			where: "libfoo_1.2_all.deb", what: "missing"},
		{name: "missing metadata", harm: func(d string) {
			os.Remove(findFile(t, d, "vendors/debian/metadata/", "snapshot.json"))
			rewriteManifest(t, d)
		}, where: "snapshot.json", what: "missing"},
		{name: "extra file", harm: func(d string) {
			os.WriteFile(filepath.Join(d, "vendors/debian/targets/evil.sh"), []byte("rm -rf /"), 0o644)
		},
			where: "vendors/debian/targets/evil.sh", what: "not listed"},
		{name: "extra unsigned target listed in the manifest", harm: func(d string) {
			os.WriteFile(filepath.Join(d, "vendors/debian/targets/evil.sh"), []byte("rm -rf /"), 0o644)
			rewriteManifest(t, d)
		}, where: "vendors/debian/targets/evil.sh", what: "not a target vendor debian signs"},
		{name: "too old", trust: func(tr *Trust) { tr.Now = time.Now().Add(DefaultMaxAge + 48*time.Hour) },
			where: "vendors/debian/metadata/timestamp.json", what: "media this old are refused"},
		{name: "lockdown rule changed", harm: func(d string) {
			p := filepath.Join(d, "lockdown", "ssh.yaml")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, append(b, []byte("\n# weakened\n")...), 0o644)
			rewriteManifest(t, d)
		}, where: "lockdown/ssh.yaml", what: "differs from this bulwark's built-in rules"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := copyTree(t, good)
			if tc.harm != nil {
				tc.harm(d)
			}
			tr := Trust{Vendors: f.pins()}
			if tc.trust != nil {
				tc.trust(&tr)
			}
			rep, err := Verify(context.Background(), d, tr)
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() {
				t.Fatal("tampered media verified")
			}
			for _, p := range rep.Problems {
				if strings.Contains(p.Where, tc.where) && strings.Contains(p.What, tc.what) {
					return
				}
			}
			t.Fatalf("no problem at %q saying %q: %v", tc.where, tc.what, rep.Err())
		})
	}
}

// rewriteManifest lists the media's files as they are now, as an attacker
// who edits the media would.
func rewriteManifest(t *testing.T, dir string) {
	t.Helper()
	b, _ := os.ReadFile(filepath.Join(dir, ManifestFile))
	m, err := ParseManifest(b)
	if err != nil {
		t.Fatal(err)
	}
	m.Files = nil
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		rel, _ := filepath.Rel(dir, p)
		if fi.IsDir() || rel == ManifestFile {
			return nil
		}
		n, sum, _ := hashFile(p, false)
		m.Files = append(m.Files, FileEntry{Path: filepath.ToSlash(rel), Length: n, SHA256: sum})
		return nil
	})
	out, err := m.JSON()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, ManifestFile), out, 0o644)
}

func TestVerifySiteApprovals(t *testing.T) {
	f := newFixture(t)
	d := f.create(Selection{Groups: []string{"web"}})
	rep, err := Verify(context.Background(), d, Trust{Vendors: f.pins()})
	if err != nil || !rep.OK() || len(rep.Notes) == 0 || !strings.Contains(rep.Notes[0], "no site root pinned") {
		t.Fatalf("without a site pin: %v %v %v", err, rep.Err(), rep.Notes)
	}
	rep, _ = Verify(context.Background(), d, Trust{Vendors: f.pins(), Site: tuf.RootFingerprint(f.root(f.site))})
	if !rep.OK() || !rep.Site.Verified || !slices.Equal(rep.Groups(), []string{"web"}) {
		t.Fatalf("with the site pin: %v %+v", rep.Err(), rep.Site)
	}
	rep, _ = Verify(context.Background(), d, Trust{Vendors: f.pins(), Site: f.pins()["debian"]})
	if rep.OK() || !strings.Contains(rep.Err().Error(), "another site's approvals") {
		t.Fatalf("another site's pin: %v", rep.Err())
	}
}

// A create killed before its rename leaves only a hidden temporary
// directory, never OUT; the next create removes it.
func TestCreateRemovesStalePartial(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	stale := filepath.Join(dir, ".disc.partial-123")
	os.MkdirAll(filepath.Join(stale, "vendors"), 0o755)
	if _, err := Create(context.Background(), CreateOptions{Out: filepath.Join(dir, "disc"), Vendors: []Source{{Name: "debian", Dir: f.vendor, Root: f.root(f.vendor)}}, Select: Selection{All: true}}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stale temporary directory left: %v", err)
	}
}
