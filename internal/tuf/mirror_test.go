package tuf

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/bulwarkhq/bulwark/internal/catalog"
	"github.com/bulwarkhq/bulwark/internal/fetch"
)

func mirrorCfg(tr *testRepo, s *server, dir string) MirrorConfig {
	root, _ := os.ReadFile(filepath.Join(tr.dir, "metadata/1.root.json"))
	return MirrorConfig{
		TrustedRoot: root,
		MetadataURL: s.URL + "/metadata",
		TargetsURL:  s.URL + "/targets",
		Dir:         dir,
		Now:         tr.clock.Now,
	}
}

func mustMirror(t *testing.T, cfg MirrorConfig) *MirrorResult {
	t.Helper()
	res, err := Mirror(context.Background(), cfg)
	if err != nil {
		t.Fatalf("mirror: %v", err)
	}
	return res
}

func mustVerify(t *testing.T, dir string, now time.Time) *VerifyReport {
	t.Helper()
	rep, err := Verify(context.Background(), dir, nil, now)
	if err != nil || !rep.OK() {
		t.Fatalf("verify %s: %v %+v", dir, err, rep)
	}
	return rep
}

func TestMirrorIsByteForByteAndIncremental(t *testing.T) {
	tr := newTestRepo(t, InitOptions{RootKeys: 2, RootThreshold: 1})
	for i := 1; i <= 5; i++ {
		tr.publish(fmt.Sprintf("BW-%d", i), map[string]string{fmt.Sprintf("p%d.deb", i): strings.Repeat("x", i*1000)})
	}
	if _, err := tr.repo.Rotate(context.Background(), metadata.ROOT, RotateOptions{}); err != nil {
		t.Fatal(err)
	}
	s := newServer(t, tr.dir)
	dir := filepath.Join(t.TempDir(), "mirror")
	cfg := mirrorCfg(tr, s, dir)

	res := mustMirror(t, cfg)
	if !res.Changed || res.Updates != 5 || res.UpdatesFetched != 5 || res.PayloadsFetched != 5 {
		t.Fatalf("first sync: %+v", res)
	}
	rep := mustVerify(t, dir, tr.clock.Now())
	if rep.Updates != 5 || rep.RootVersion != 2 {
		t.Fatalf("mirror verify: %+v", rep)
	}
	for _, f := range []string{"timestamp.json", "root.json", "2.root.json"} {
		if !bytes.Equal(tr.read("metadata/"+f), mustRead(t, filepath.Join(dir, "metadata", f))) {
			t.Fatalf("metadata/%s differs from the vendor's", f)
		}
	}

	// Nothing new: one timestamp and one 404 for the next root.
	res = mustMirror(t, cfg)
	if res.Changed || res.BytesFetched > 2048 {
		t.Fatalf("sync with nothing new: %+v", res)
	}

	// One more update: only its bins and files.
	tr.publish("BW-6", map[string]string{"p6.deb": "six"})
	res = mustMirror(t, cfg)
	if !res.Changed || res.UpdatesFetched != 1 || res.PayloadsFetched != 1 || res.BinsFetched > 2 {
		t.Fatalf("incremental sync: %+v", res)
	}
	mustVerify(t, dir, tr.clock.Now())
}

func TestMirrorFiltersAndMetadataOnly(t *testing.T) {
	tr := newTestRepo(t, InitOptions{})
	tr.publish("BW-1", map[string]string{"a.deb": "a"})
	tr.publish("BW-2", map[string]string{"b.deb": "b"})
	s := newServer(t, tr.dir)

	cfg := mirrorCfg(tr, s, filepath.Join(t.TempDir(), "filtered"))
	cfg.Include = func(u *catalog.Update) bool { return u.ID == "BW-2" }
	res := mustMirror(t, cfg)
	if res.UpdatesFetched != 2 || res.PayloadsFetched != 1 {
		t.Fatalf("filtered sync: %+v; want both update.json files and one payload", res)
	}

	cfg = mirrorCfg(tr, s, filepath.Join(t.TempDir(), "metaonly"))
	cfg.MetadataOnly = true
	res = mustMirror(t, cfg)
	if res.UpdatesFetched != 2 || res.PayloadsFetched != 0 {
		t.Fatalf("metadata-only sync: %+v", res)
	}
	// An agent pointed at the metadata-only mirror for metadata and at the
	// upstream for payloads gets verified bytes.
	ms := newServer(t, cfg.Dir)
	c, err := NewClient(ClientConfig{TrustedRoot: cfg.TrustedRoot, MetadataURL: ms.URL + "/metadata", TargetsURL: s.URL + "/targets", CacheDir: t.TempDir(), Now: tr.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Update(context.Background(), "BW-1")
	if err != nil {
		t.Fatal(err)
	}
	tf, err := c.Payload(context.Background(), info, "a.deb")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Download(context.Background(), tf, filepath.Join(t.TempDir(), "a.deb"), fetch.FileOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestMirrorRefusesAttacksAndKeepsServing(t *testing.T) {
	for _, attack := range []string{"tampered payload", "tampered update.json", "rollback", "unsigned timestamp", "expired timestamp"} {
		t.Run(attack, func(t *testing.T) {
			tr := newTestRepo(t, InitOptions{})
			tr.publish("BW-1", map[string]string{"a.deb": "one"})
			oldTS := tr.read("metadata/timestamp.json")
			s := newServer(t, tr.dir)
			dir := filepath.Join(t.TempDir(), "mirror")
			cfg := mirrorCfg(tr, s, dir)
			mustMirror(t, cfg)
			tr.clock.Add(time.Minute)
			tr.publish("BW-2", map[string]string{"b.deb": "two"})
			served := mustRead(t, filepath.Join(dir, "metadata/timestamp.json"))

			switch attack {
			case "tampered payload", "tampered update.json":
				file := "b.deb"
				if attack == "tampered update.json" {
					file = "update.json"
				}
				entries, _ := os.ReadDir(filepath.Join(tr.dir, "targets/updates/BW-2"))
				for _, e := range entries {
					if strings.HasSuffix(e.Name(), "."+file) {
						body := tr.read("targets/updates/BW-2/" + e.Name())
						body[0] ^= 1
						s.serveBytes("/targets/updates/BW-2/"+e.Name(), body)
					}
				}
			case "rollback":
				tr.publish("BW-3", map[string]string{"c.deb": "three"})
				mustMirror(t, cfg)
				served = mustRead(t, filepath.Join(dir, "metadata/timestamp.json"))
				s.serveBytes("/metadata/timestamp.json", oldTS)
			case "unsigned timestamp":
				ts := tr.timestamp()
				ts.ClearSignatures()
				b, _ := ts.ToBytes(false)
				s.serveBytes("/metadata/timestamp.json", b)
			case "expired timestamp":
				cfg.Now = func() time.Time { return tr.clock.Now().Add(48 * time.Hour) }
			}
			if _, err := Mirror(context.Background(), cfg); err == nil {
				t.Fatalf("%s: sync succeeded", attack)
			}
			if !bytes.Equal(served, mustRead(t, filepath.Join(dir, "metadata/timestamp.json"))) {
				t.Fatalf("%s: the mirror switched to unverified state", attack)
			}
			mustVerify(t, dir, tr.clock.Now())
		})
	}
}

// TestMirrorChain syncs vendor → upstream → site → branch over HTTP and
// checks the branch is the vendor's repository byte for byte.
func TestMirrorChain(t *testing.T) {
	tr := newTestRepo(t, InitOptions{})
	tr.publish("BW-1", map[string]string{"a.deb": "one"})
	tr.publish("BW-2", map[string]string{"b.deb": "two"})
	prev := newServer(t, tr.dir)
	var last string
	for _, level := range []string{"upstream", "site", "branch"} {
		dir := filepath.Join(t.TempDir(), level)
		mustMirror(t, mirrorCfg(tr, prev, dir))
		mustVerify(t, dir, tr.clock.Now())
		prev = newServer(t, dir)
		last = dir
	}
	for _, f := range []string{"metadata/timestamp.json", "metadata/root.json"} {
		if !bytes.Equal(tr.read(f), mustRead(t, filepath.Join(last, f))) {
			t.Fatalf("branch %s differs from the vendor's", f)
		}
	}
}

func mustRead(t testing.TB, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// crashMirrorChild is run by TestMain in a child process: it syncs and
// SIGKILLs itself at the named point.
func crashMirrorChild(point string) {
	root, _ := os.ReadFile(os.Getenv("BULWARK_TUF_ROOT"))
	cfg := MirrorConfig{
		TrustedRoot: root,
		MetadataURL: os.Getenv("BULWARK_TUF_URL") + "/metadata",
		TargetsURL:  os.Getenv("BULWARK_TUF_URL") + "/targets",
		Dir:         os.Getenv("BULWARK_TUF_MIRROR"),
		Fetcher:     fetch.New(fetch.Options{}),
		Now:         func() time.Time { return time.Date(2026, 11, 20, 12, 30, 0, 0, time.UTC) },
	}
	kill := func() { syscall.Kill(os.Getpid(), syscall.SIGKILL); time.Sleep(time.Minute) }
	if point == "mid-payload" {
		cfg.Progress = func(path string, done, total int64) {
			if done > 0 && done < total {
				kill()
			}
		}
	}
	m := &mirror{cfg: cfg, res: &MirrorResult{}, hook: func(p string) {
		if p == point {
			kill()
		}
	}}
	for _, d := range []string{m.local(MetadataDir, ""), m.local(TargetsDir, "")} {
		os.MkdirAll(d, 0o755)
	}
	if err := m.run(context.Background()); err != nil {
		os.Stderr.WriteString(err.Error())
		os.Exit(2)
	}
	os.Exit(0)
}

func TestMirrorSurvivesKill(t *testing.T) {
	for _, point := range []string{"mid-payload", "after-targets", "before-timestamp"} {
		t.Run(point, func(t *testing.T) {
			tr := newTestRepo(t, InitOptions{})
			tr.publish("BW-1", map[string]string{"a.deb": "one"})
			big := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB
			s := newServer(t, tr.dir)
			dir := filepath.Join(t.TempDir(), "mirror")
			cfg := mirrorCfg(tr, s, dir)
			mustMirror(t, cfg)
			served := mustRead(t, filepath.Join(dir, "metadata/timestamp.json"))
			tr.publish("BW-2", map[string]string{"big.deb": big})

			// The payload is served in two halves with a pause, so the
			// child sees progress mid-file; later requests record Range.
			var ranges atomic.Int32
			entries, _ := os.ReadDir(filepath.Join(tr.dir, "targets/updates/BW-2"))
			for _, e := range entries {
				if strings.HasSuffix(e.Name(), ".big.deb") {
					body := tr.read("targets/updates/BW-2/" + e.Name())
					s.set("/targets/updates/BW-2/"+e.Name(), func(w http.ResponseWriter, r *http.Request) {
						if r.Header.Get("Range") != "" {
							ranges.Add(1)
							http.ServeContent(w, r, "big.deb", time.Time{}, bytes.NewReader(body))
							return
						}
						w.Header().Set("Content-Length", fmt.Sprint(len(body)))
						w.Write(body[:len(body)/2])
						w.(http.Flusher).Flush()
						time.Sleep(300 * time.Millisecond)
						w.Write(body[len(body)/2:])
					})
				}
			}
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "BULWARK_TUF_MIRROR_CRASH_AT="+point, "BULWARK_TUF_ROOT="+filepath.Join(tr.dir, "metadata/1.root.json"),
				"BULWARK_TUF_URL="+s.URL, "BULWARK_TUF_MIRROR="+dir)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("sync was not killed at %s: %v %s", point, err, out)
			}
			// Nothing partial is served: the old state, complete.
			if !bytes.Equal(served, mustRead(t, filepath.Join(dir, "metadata/timestamp.json"))) {
				t.Fatalf("after kill at %s the mirror serves a new timestamp", point)
			}
			mustVerify(t, dir, tr.clock.Now())
			if point == "after-targets" {
				// Targets are written unsynced; after a power loss one may
				// have the right size and the wrong bytes. The restart must
				// not trust it for its size.
				files, _ := filepath.Glob(filepath.Join(dir, "targets/updates/BW-2/*.big.deb"))
				if len(files) != 1 {
					t.Fatalf("payload not written before the kill: %v", files)
				}
				if err := os.WriteFile(files[0], make([]byte, len(big)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			res := mustMirror(t, cfg)
			if !res.Changed {
				t.Fatalf("restart after kill at %s did not finish the sync: %+v", point, res)
			}
			rep := mustVerify(t, dir, tr.clock.Now())
			if rep.Updates != 2 {
				t.Fatalf("after restart: %d updates, want 2", rep.Updates)
			}
			if point == "mid-payload" && ranges.Load() == 0 {
				t.Fatal("the restart downloaded the payload from the start instead of resuming")
			}
		})
	}
}

// TestMirrorManyUpdatesIncremental brings 80 new updates into a mirror in
// one incremental sync, fetched eight at a time (scripts/test runs it under
// -race).
func TestMirrorManyUpdatesIncremental(t *testing.T) {
	tr := newTestRepo(t, InitOptions{BinBits: 4})
	tr.publish("BW-FIRST", map[string]string{"first.deb": "1"})
	s := newServer(t, tr.dir)
	dir := filepath.Join(t.TempDir(), "mirror")
	mustMirror(t, mirrorCfg(tr, s, dir)) // the next sync is incremental
	var ys []string
	for i := 0; i < 80; i++ {
		ys = append(ys, writeUpdate(t, fmt.Sprintf("BW-%03d", i), map[string]string{fmt.Sprintf("p%03d.deb", i): strings.Repeat("z", 1000+i)}, ""))
	}
	if _, err := tr.repo.PublishMany(context.Background(), ys, PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	mustMirror(t, mirrorCfg(tr, s, dir))
	if rep := mustVerify(t, dir, tr.clock.Now()); rep.Updates != 81 {
		t.Fatalf("%d updates mirrored, want 81", rep.Updates)
	}
}

// Report tells the whole sync's progress as it goes: phases in order, the
// totals learned before what they count is done, and at the end everything
// planned is done, agreeing with the result.
func TestMirrorReportsProgress(t *testing.T) {
	tr := newTestRepo(t, InitOptions{})
	for i := 1; i <= 4; i++ {
		tr.publish(fmt.Sprintf("BW-%d", i), map[string]string{fmt.Sprintf("p%d.deb", i): strings.Repeat("x", i*3000)})
	}
	s := newServer(t, tr.dir)
	cfg := mirrorCfg(tr, s, filepath.Join(t.TempDir(), "mirror"))
	var seen []MirrorProgress
	cfg.Report = func(p MirrorProgress) { seen = append(seen, p) } // called one at a time
	res := mustMirror(t, cfg)
	order := map[string]int{"metadata": 0, "targets": 1, "switch": 2}
	for i, p := range seen {
		if p.BytesDone > p.BytesTotal || p.PayloadsDone > p.PayloadsTotal || p.UpdatesDone > p.UpdatesTotal {
			t.Fatalf("report %d: more done than planned: %+v", i, p)
		}
		if i > 0 && (order[p.Phase] < order[seen[i-1].Phase] || p.BytesDone < seen[i-1].BytesDone) {
			t.Fatalf("report %d went back: %+v after %+v", i, p, seen[i-1])
		}
	}
	last := seen[len(seen)-1]
	want := MirrorProgress{Phase: "switch", UpdatesTotal: 4, UpdatesDone: 4, PayloadsTotal: 4, PayloadsDone: 4, BytesTotal: 30000, BytesDone: 30000}
	if last != want || res.PayloadsFetched != 4 {
		t.Fatalf("last report %+v, want %+v (result %+v)", last, want, res)
	}
	// Nothing new: no targets phase, nothing to fetch.
	seen = nil
	mustMirror(t, cfg)
	if len(seen) != 1 || seen[0] != (MirrorProgress{Phase: "metadata"}) {
		t.Fatalf("a sync with nothing new reported %+v", seen)
	}
}
