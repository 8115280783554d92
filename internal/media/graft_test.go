package media

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A payload's source changes after it was copied and hashed but before
// xorriso, which reads the payloads from the source repository, reads it:
// the image would hold bytes nobody verified. Create compares the image
// with the verified directory and refuses, leaving nothing behind.
func TestAttackSourceChangedWhileImaged(t *testing.T) {
	f := newFixture(t)
	src := findFile(t, filepath.Join(f.vendor, "targets"), "BW-3", ".deb")
	testHookBeforeImage = func(copied <-chan struct{}) {
		<-copied
		b, err := os.ReadFile(src)
		if err != nil {
			t.Error(err)
			return
		}
		b[len(b)/2] ^= 1
		if err := os.WriteFile(src, b, 0o644); err != nil {
			t.Error(err)
		}
	}
	defer func() { testHookBeforeImage = nil }()
	dir, isoDir := t.TempDir(), t.TempDir()
	_, err := Create(context.Background(), CreateOptions{Out: filepath.Join(dir, "disc"), ISO: filepath.Join(isoDir, "disc.iso"),
		Vendors: []Source{{Name: "debian", Dir: f.vendor, Root: f.root(f.vendor)}}, Select: Selection{All: true}})
	if err == nil || !strings.Contains(err.Error(), "vendors/debian/targets/updates/BW-3/") || !strings.Contains(err.Error(), "changed while the image was made") {
		t.Fatalf("create with a source changed under xorriso: %v", err)
	}
	for _, d := range []string{dir, isoDir} {
		if left, _ := os.ReadDir(d); len(left) > 0 {
			t.Fatalf("left behind in %s: %v", d, left)
		}
	}
}

// The same attack on a file copied after xorriso finished and after the
// comparison with the image started (so compared while the rest is still
// being copied, not after): the
// source is changed before xorriso reads it and put back before Create
// copies and hashes it, so the directory holds the signed bytes and the
// image others. Create refuses, leaving nothing behind.
func TestAttackSourceChangedBeforeImagedCopiedAfter(t *testing.T) {
	f := newFixture(t)
	src := findFile(t, filepath.Join(f.vendor, "targets"), "BW-3", ".deb")
	good, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(good)
	bad[len(bad)/2] ^= 1
	testHookBeforeImage = func(<-chan struct{}) {
		if err := os.WriteFile(src, bad, 0o644); err != nil {
			t.Error(err)
		}
	}
	waited, comparing := false, make(chan struct{})
	testHookComparing = func() { close(comparing) }
	testHookBeforeCopy = func(dst string, imaged <-chan struct{}) {
		if strings.Contains(dst, "/BW-3/") && strings.HasSuffix(dst, ".deb") {
			<-imaged
			<-comparing
			waited = true
			if err := os.WriteFile(src, good, 0o644); err != nil {
				t.Error(err)
			}
		}
	}
	defer func() { testHookBeforeImage, testHookBeforeCopy, testHookComparing = nil, nil, nil }()
	dir, isoDir := t.TempDir(), t.TempDir()
	_, err = Create(context.Background(), CreateOptions{Out: filepath.Join(dir, "disc"), ISO: filepath.Join(isoDir, "disc.iso"),
		Vendors: []Source{{Name: "debian", Dir: f.vendor, Root: f.root(f.vendor)}}, Select: Selection{All: true}})
	if !waited {
		t.Fatal("the payload was not copied after the image was made")
	}
	if err == nil || !strings.Contains(err.Error(), "vendors/debian/targets/updates/BW-3/") || !strings.Contains(err.Error(), "changed while the image was made") {
		t.Fatalf("create with a source changed under xorriso, copied after it: %v", err)
	}
	for _, d := range []string{dir, isoDir} {
		if left, _ := os.ReadDir(d); len(left) > 0 {
			t.Fatalf("left behind in %s: %v", d, left)
		}
	}
}

// Sources xorriso cannot read in place (a link, a path with characters a
// pathspec gives a meaning to) are written first and copied for it: the
// image is still the same bytes as WriteISO's, and verifies.
func TestCreateISOFromSourcesNotGrafted(t *testing.T) {
	f := newFixture(t)
	repo := filepath.Join(t.TempDir(), `v=1 \x`)
	if out, err := exec.Command("cp", "-a", f.vendor, repo).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	payload := findFile(t, filepath.Join(repo, "targets"), "BW-3", ".deb")
	moved := filepath.Join(t.TempDir(), "elsewhere.deb")
	if err := os.Rename(payload, moved); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(moved, payload); err != nil {
		t.Fatal(err)
	}
	out, iso := filepath.Join(t.TempDir(), "disc"), filepath.Join(t.TempDir(), "disc.iso")
	if _, err := Create(context.Background(), CreateOptions{Out: out, ISO: iso, Vendors: []Source{{Name: "debian", Dir: repo, Root: f.root(repo)}}, Select: Selection{All: true}}); err != nil {
		t.Fatal(err)
	}
	again := filepath.Join(t.TempDir(), "again.iso")
	if err := WriteISO(context.Background(), out, again, DefaultDate); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(iso)
	b, _ := os.ReadFile(again)
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Fatalf("the image written by Create (%d bytes) differs from WriteISO's (%d bytes)", len(a), len(b))
	}
	d, closeFn, err := Open(context.Background(), iso)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	rep, err := Verify(context.Background(), d, Trust{Vendors: f.pins()})
	if err != nil || !rep.OK() {
		t.Fatalf("verify the image: %v %v", err, rep.Err())
	}
}

// The check of an image against its directory names a file whose bytes
// differ, one missing from the image, and a directory with more files.
func TestSameInImageRefuses(t *testing.T) {
	f := newFixture(t)
	iso := filepath.Join(t.TempDir(), "disc.iso")
	dir := f.createISO(Selection{All: true}, iso)
	mb, _ := os.ReadFile(filepath.Join(dir, ManifestFile))
	m, err := ParseManifest(mb)
	if err != nil {
		t.Fatal(err)
	}
	files := append(m.Files, FileEntry{Path: ManifestFile})
	files[len(files)-1].Length = int64(len(mb))
	if err := sameInImage(context.Background(), iso, dir, files); err != nil {
		t.Fatalf("the image of the directory: %v", err)
	}
	more := append(files[:len(files):len(files)], FileEntry{Path: "extra.txt", Length: 1})
	if err := sameInImage(context.Background(), iso, dir, more); err == nil || !strings.Contains(err.Error(), "files, the media directory") {
		t.Fatalf("a file more: %v", err)
	}
	missing := append(files[:0:0], files...)
	missing[0].Path = "vendors/debian/nothere.json"
	if err := sameInImage(context.Background(), iso, dir, missing); err == nil || !strings.Contains(err.Error(), "no vendors/debian/nothere.json in it") {
		t.Fatalf("a file missing from the image: %v", err)
	}
	p := findFile(t, dir, "BW-3", ".deb")
	b, _ := os.ReadFile(p)
	b[0] ^= 1
	os.WriteFile(p, b, 0o644)
	if err := sameInImage(context.Background(), iso, dir, files); err == nil || !strings.Contains(err.Error(), "BW-3") || !strings.Contains(err.Error(), "differ") {
		t.Fatalf("a changed byte: %v", err)
	}
}
