package tuf

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/fetch"
)

// TestMain doubles as the crashing publisher for TestPublishSurvivesKill:
// run with BULWARK_TUF_CRASH_AT set, the test binary publishes one update
// and SIGKILLs itself at the named point of the write.
func TestMain(m *testing.M) {
	if point := os.Getenv("BULWARK_TUF_MIRROR_CRASH_AT"); point != "" {
		crashMirrorChild(point)
	}
	if point := os.Getenv("BULWARK_TUF_CRASH_AT"); point != "" {
		r, err := Open(os.Getenv("BULWARK_TUF_REPO"), Options{})
		if err != nil {
			os.Stderr.WriteString(err.Error())
			os.Exit(2)
		}
		r.hook = func(p string) {
			if p == point {
				syscall.Kill(os.Getpid(), syscall.SIGKILL)
				time.Sleep(time.Minute)
			}
		}
		_, err = r.Publish(context.Background(), os.Getenv("BULWARK_TUF_YAML"), PublishOptions{Revise: true})
		if err != nil {
			os.Stderr.WriteString(err.Error())
			os.Exit(2)
		}
		os.Exit(0) // the point was never reached: the parent fails the test
	}
	os.Exit(m.Run())
}

func TestPublishSurvivesKill(t *testing.T) {
	for _, point := range []string{"after-payloads", "after-bins", "after-snapshot", "before-timestamp", "after-timestamp"} {
		t.Run(point, func(t *testing.T) {
			tr := newTestRepo(t, InitOptions{})
			tr.publish("BW-1", map[string]string{"a.deb": "one"})
			s := newServer(t, tr.dir)
			cache := t.TempDir()
			mustRefreshAndLookUp(t, newClient(t, tr, s, cache, fetch.Limits{}), "BW-1")
			tr.repo.Close()

			y := writeUpdate(t, "BW-2", map[string]string{"b.deb": "two"}, "supersedes: [BW-1]\n")
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "BULWARK_TUF_CRASH_AT="+point, "BULWARK_TUF_REPO="+tr.dir, "BULWARK_TUF_YAML="+y)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
				t.Fatalf("publisher was not killed at %s: %v %s", point, err, out)
			}

			// Whatever the point, the repository verifies and a client that
			// had the old state can refresh.
			ctx := context.Background()
			if rep, err := Verify(ctx, tr.dir, nil, tr.clock.Now()); err != nil || !rep.OK() {
				t.Fatalf("after kill at %s, verify: %v %+v", point, err, rep)
			}
			c := newClient(t, tr, s, cache, fetch.Limits{})
			mustRefreshAndLookUp(t, c, "BW-1")
			_, err = c.Update(ctx, "BW-2")
			visible := err == nil
			if visible != (point == "after-timestamp") {
				t.Fatalf("after kill at %s: BW-2 visible = %v (err %v); it must appear only once the timestamp is written", point, visible, err)
			}

			// Files the killed publish left under new version numbers.
			orphans := map[string][]byte{}
			if point != "after-timestamp" {
				entries, _ := os.ReadDir(filepath.Join(tr.dir, MetadataDir))
				snapV := tr.timestamp().Signed.Meta["snapshot.json"].Version
				for _, e := range entries {
					var v int64
					var role string
					if n, _ := fmt.Sscanf(e.Name(), "%d.%s", &v, &role); n == 2 && role != "root.json" && (role == "snapshot.json" && v > snapV || strings.HasPrefix(role, "bins-") && v > 1) {
						orphans[e.Name()] = tr.read(filepath.Join(MetadataDir, e.Name()))
					}
				}
			}

			// Publishing again completes the interrupted publish.
			r, err := Open(tr.dir, Options{Now: tr.clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if _, err := r.Publish(ctx, y, PublishOptions{}); err != nil {
				t.Fatalf("publish after kill at %s: %v", point, err)
			}
			if rep, err := Verify(ctx, tr.dir, nil, tr.clock.Now()); err != nil || !rep.OK() || rep.Updates != 2 {
				t.Fatalf("verify after re-publish: %v %+v", err, rep)
			}
			mustRefreshAndLookUp(t, newClient(t, tr, s, cache, fetch.Limits{}), "BW-2")
			// A versioned file name always means the same bytes: the orphans
			// were skipped, not overwritten.
			for name, b := range orphans {
				if !bytes.Equal(b, tr.read(filepath.Join(MetadataDir, name))) {
					t.Fatalf("after kill at %s, the next publish overwrote %s", point, name)
				}
			}
		})
	}
}
