package media

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// tree writes a small media-like directory: a manifest and a lockdown
// directory with one rules file.
func tree(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "media")
	for p, s := range map[string]string{"MANIFEST.json": "{}\n", "lockdown/extra.yaml": "rules: []\n", "README.txt": "hello\n"} {
		p = filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// treeISO writes a tree and its ISO image in a work directory.
func treeISO(t *testing.T) (src, work, iso string) {
	t.Helper()
	src, work = tree(t), t.TempDir()
	iso = filepath.Join(work, "disc.iso")
	if err := WriteISO(t.Context(), src, iso, DefaultDate); err != nil {
		t.Fatal(err)
	}
	return src, work, iso
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

// assertLockdown checks that dir is the lockdown directory of tree.
func assertLockdown(t *testing.T, dir string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "extra.yaml"))
	if err != nil || string(b) != "rules: []\n" {
		t.Fatalf("%s/extra.yaml = %q, %v", dir, b, err)
	}
}

// A directory inside an ISO image or a tar archive of media opens like a
// directory (what `lockdown apply --rules disc.iso/lockdown` reads), with
// the real xorriso and tar.
func TestOpenPathInsideImagesAndArchives(t *testing.T) {
	src, work, iso := treeISO(t)
	tgz := filepath.Join(work, "media.tgz")
	run(t, "tar", "-C", src, "-czf", tgz, ".")
	tarTop := filepath.Join(work, "top.tar") // holds the directory media/ itself
	run(t, "tar", "-C", filepath.Dir(src), "-cf", tarTop, "media")

	for name, p := range map[string]string{"directory": src + "/lockdown", "iso": iso + "/lockdown", "tgz": tgz + "/lockdown", "tar with a top directory": tarTop + "/lockdown"} {
		t.Run(name, func(t *testing.T) {
			dir, done, err := OpenPath(t.Context(), p)
			if err != nil {
				t.Fatal(err)
			}
			assertLockdown(t, dir)
			done()
			if p != src+"/lockdown" {
				if _, err := os.Stat(dir); !os.IsNotExist(err) {
					t.Fatalf("the extracted copy %s is still there after close (%v)", dir, err)
				}
			}
		})
	}
	// Only the directory asked for comes out of an image.
	dir, done, err := OpenPath(t.Context(), iso+"/lockdown")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "..", "README.txt")); !os.IsNotExist(err) {
		t.Errorf("README.txt was extracted along with lockdown/ (%v)", err)
	}
	done()
	// The whole media, as media verify and import read them.
	for _, p := range []string{iso, tgz, tarTop} {
		dir, done, err := Open(t.Context(), p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dir, "MANIFEST.json")); err != nil {
			t.Errorf("%s: no MANIFEST.json at the top of the copy: %v", p, err)
		}
		done()
	}
}

func TestOpenPathRefuses(t *testing.T) {
	src, work, iso := treeISO(t)
	text := filepath.Join(work, "notes.txt")
	os.WriteFile(text, []byte("not an image\n"), 0o644)
	tests := []struct{ path, want string }{
		{iso + "/nothere", "media " + iso + ": no nothere in the image"},
		{iso + "/README.txt", "README.txt is not a directory in it"},
		{text + "/lockdown", "media " + text + ": neither a directory, an ISO 9660 image nor a tar archive"},
		{filepath.Join(work, "missing.iso", "lockdown"), "file does not exist"},
		{src + "/nothere", "file does not exist"},
	}
	for _, tt := range tests {
		_, _, err := OpenPath(t.Context(), tt.path)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("OpenPath(%s) = %v, want an error containing %q", tt.path, err, tt.want)
		}
	}
}

// TestAttackArchiveLinkOutOfMedia: an archive or image whose lockdown
// directory holds a symlink to a file of the machine (/etc/shadow) would
// make the reader load that file as rules. Extracted copies with a link are
// refused, naming it, and removed.
func TestAttackArchiveLinkOutOfMedia(t *testing.T) {
	src := tree(t)
	if err := os.Symlink("/etc/shadow", filepath.Join(src, "lockdown", "zz.yaml")); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	tgz := filepath.Join(work, "evil.tgz")
	run(t, "tar", "-C", src, "-czf", tgz, ".")
	iso := filepath.Join(work, "evil.iso")
	if err := WriteISO(t.Context(), src, iso, DefaultDate); err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir() // where the copies are extracted
	t.Setenv("TMPDIR", tmp)
	for _, p := range []string{tgz + "/lockdown", iso + "/lockdown", tgz, iso} {
		_, _, err := OpenPath(t.Context(), p)
		if err == nil || !strings.Contains(err.Error(), "zz.yaml is a L") || !strings.Contains(err.Error(), "media hold only directories and regular files") {
			t.Errorf("OpenPath(%s) = %v, want the link zz.yaml refused", p, err)
		}
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Errorf("refused copies left behind in %s: %v", tmp, left)
	}
}
