package media

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/bulwarkhq/bulwark/internal/debtest"
	"github.com/bulwarkhq/bulwark/internal/fetch"
	"github.com/bulwarkhq/bulwark/internal/tuf"
)

// dataDir is an (empty) server data directory.
func dataDir(t *testing.T) string {
	t.Helper()
	d := filepath.Join(t.TempDir(), "data")
	os.MkdirAll(d, 0o700)
	os.WriteFile(filepath.Join(d, "FORMAT"), []byte("bulwark-data 1\n"), 0o600)
	return d
}

// served reads the server's mirror as an agent would (through a verifying
// client from the pinned root) and returns its timestamp version and
// whether update id and its payloads are there and verify.
func served(t *testing.T, f *fixture, data, id string) (int64, error) {
	t.Helper()
	dir := filepath.Join(data, "mirrors", "debian")
	b, err := os.ReadFile(filepath.Join(dir, "metadata", "timestamp.json"))
	if err != nil {
		return 0, err
	}
	ts, err := tsVersion(b)
	if err != nil {
		return 0, err
	}
	ctx := context.Background()
	c, err := tuf.NewClient(tuf.ClientConfig{TrustedRoot: f.root(f.vendor), MetadataURL: "file://" + filepath.Join(dir, "metadata"),
		TargetsURL: "file://" + filepath.Join(dir, "targets"), CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Update(ctx, id)
	if err != nil {
		return ts, err
	}
	for _, p := range info.Update.Payloads {
		tf, err := c.Payload(ctx, info, p.File)
		if err != nil {
			return ts, err
		}
		if err := c.Download(ctx, tf, filepath.Join(t.TempDir(), p.File), fetchOpts()); err != nil {
			return ts, err
		}
	}
	return ts, nil
}

func TestImportIsASync(t *testing.T) {
	f := newFixture(t)
	m1 := f.create(Selection{Security: true})
	data := dataDir(t)
	ctx := context.Background()

	// A vendor the server does not trust: refused, nothing written.
	_, err := Import(ctx, ImportOptions{Media: m1, DataDir: data, Looked: []string{"the server's configuration srv.yaml (upstream.vendors)"}})
	if err == nil || !strings.Contains(err.Error(), "not trusted here") ||
		!strings.Contains(err.Error(), "(looked in: the server's data directory "+data+" (roots/), the server's configuration srv.yaml (upstream.vendors))") {
		t.Fatalf("untrusted vendor: %v", err)
	}
	if _, err := os.Stat(filepath.Join(data, "mirrors")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("refused media wrote into the data directory")
	}
	// A pin that contradicts the server's is refused too.
	os.MkdirAll(filepath.Join(data, "roots"), 0o700)
	os.WriteFile(filepath.Join(data, "roots", "debian.json"), f.root(f.site), 0o644)
	if _, err := Import(ctx, ImportOptions{Media: m1, DataDir: data, Pins: f.pins()}); err == nil || !strings.Contains(err.Error(), "--vendor pins sha256:") || !strings.Contains(err.Error(), "already trusts root") {
		t.Fatalf("contradicting pin: %v", err)
	}
	from := map[string]string{"debian": "the server's configuration srv.yaml (upstream.vendors)"}
	if _, err := Import(ctx, ImportOptions{Media: m1, DataDir: data, Pins: f.pins(), PinsFrom: from}); err == nil || !strings.Contains(err.Error(), "vendor debian: the server's configuration srv.yaml (upstream.vendors) pins sha256:") {
		t.Fatalf("contradicting pin from the configuration: %v", err)
	}
	os.Remove(filepath.Join(data, "roots", "debian.json"))

	res, err := Import(ctx, ImportOptions{Media: m1, DataDir: data, Pins: f.pins()})
	if err != nil {
		t.Fatal(err)
	}
	if r := res.Vendors["debian"]; !r.Changed || r.PayloadsFetched != 3 {
		t.Fatalf("first import: %+v", r)
	}
	if b, _ := os.ReadFile(filepath.Join(data, "roots", "debian.json")); string(b) != string(f.root(f.vendor)) {
		t.Fatal("the import did not pin the vendor root it was told to")
	}
	v1, err := served(t, f, data, "BW-3")
	if err != nil {
		t.Fatal(err)
	}
	// The same media again: nothing to do. The pin is now the server's.
	if res, err := Import(ctx, ImportOptions{Media: m1, DataDir: data}); err != nil || res.Vendors["debian"].Changed {
		t.Fatalf("second import: %+v %v", res, err)
	}

	// Newer media bring BW-5; then the older media are a rollback.
	f.publish("BW-5", debtest.Package{Name: "baz", Version: "1.0", Files: map[string]string{"/usr/bin/baz": "1\n"}}, "classification: security\nreboot: never\n")
	m2 := f.create(Selection{Security: true})
	if _, err := Import(ctx, ImportOptions{Media: m2, DataDir: data}); err != nil {
		t.Fatal(err)
	}
	v2, err := served(t, f, data, "BW-5")
	if err != nil || v2 <= v1 {
		t.Fatalf("after newer media: v%d (was v%d) %v", v2, v1, err)
	}
	_, err = Import(ctx, ImportOptions{Media: m1, DataDir: data})
	if err == nil || !strings.Contains(err.Error(), "rollback") || !strings.Contains(err.Error(), "vendors/debian/metadata/timestamp.json") {
		t.Fatalf("older media: %v", err)
	}
	if v, err := served(t, f, data, "BW-5"); err != nil || v != v2 {
		t.Fatalf("after the refused rollback: v%d %v", v, err)
	}
}

// An import killed with SIGKILL in the middle of copying payloads leaves
// the server serving exactly what it served before (here: the older
// media's state, complete and verifiable); importing again finishes.
func TestImportSurvivesKill(t *testing.T) {
	f := newFixture(t)
	m1 := f.create(Selection{Security: true})
	data := dataDir(t)
	if _, err := Import(context.Background(), ImportOptions{Media: m1, DataDir: data, Pins: f.pins()}); err != nil {
		t.Fatal(err)
	}
	v1, err := served(t, f, data, "BW-3")
	if err != nil {
		t.Fatal(err)
	}
	f.publish("BW-5", debtest.Package{Name: "baz", Version: "1.0", Files: map[string]string{"/usr/bin/baz": strings.Repeat("x", 1<<20)}}, "classification: security\nreboot: never\n")
	m2 := f.create(Selection{Security: true})

	cmd := exec.Command(os.Args[0], "-test.run=^TestImportHelperProcess$")
	cmd.Env = append(os.Environ(), "BULWARK_MEDIA_IMPORT_HELPER="+m2+"|"+data)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("helper was not killed: %v\n%s", err, out)
	}
	// Killed mid-import: the previous state is what is served, whole.
	if v, err := served(t, f, data, "BW-3"); err != nil || v != v1 {
		t.Fatalf("after the kill the server serves v%d (want v%d): %v", v, v1, err)
	}
	if _, err := served(t, f, data, "BW-5"); !errors.Is(err, tuf.ErrUnknownUpdate) {
		t.Fatalf("after the kill BW-5 is visible: %v", err)
	}
	res, err := Import(context.Background(), ImportOptions{Media: m2, DataDir: data})
	if err != nil || !res.Vendors["debian"].Changed {
		t.Fatalf("import after the kill: %+v %v", res, err)
	}
	if v, err := served(t, f, data, "BW-5"); err != nil || v <= v1 {
		t.Fatalf("after the import finished: v%d %v", v, err)
	}
}

// TestImportHelperProcess is the process TestImportSurvivesKill kills: it
// imports and sends itself SIGKILL as the first payload is being copied.
func TestImportHelperProcess(t *testing.T) {
	arg := os.Getenv("BULWARK_MEDIA_IMPORT_HELPER")
	if arg == "" {
		t.Skip("helper process of TestImportSurvivesKill")
	}
	m, data, _ := strings.Cut(arg, "|")
	_, err := Import(context.Background(), ImportOptions{Media: m, DataDir: data, Progress: func(p string, done, total int64) {
		if done > 0 {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
	}})
	fmt.Println("import finished without being killed:", err)
}

func tsVersion(b []byte) (int64, error) {
	ts, err := metadata.Timestamp().FromBytes(b)
	if err != nil {
		return 0, err
	}
	return ts.Signed.Version, nil
}

func fetchOpts() fetch.FileOptions { return fetch.FileOptions{} }
