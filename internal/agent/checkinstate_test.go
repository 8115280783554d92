package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/approval"
	"github.com/bulwarkhq/bulwark/internal/catalog"
)

// freshDaemon is a daemon in download mode over a world with one approved
// update, a directory root and a boot id file, after one full cycle; then
// the site's repository answers garbage, so that a full cycle fails and
// shows in the error.
func freshDaemon(t *testing.T) (*world, *Daemon, string) {
	t.Helper()
	w := newWorld(t)
	w.publish("BW-1", "", map[string]string{"a.deb": "a"})
	w.approve("web", "BW-1")
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	for f, c := range map[string]string{"var/lib/dpkg/status": "", "etc/os-release": "ID=debian\n", "boot_id": "boot-1\n"} {
		os.MkdirAll(filepath.Join(root, filepath.Dir(f)), 0o755)
		if err := os.WriteFile(filepath.Join(root, f), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	a, err := Open(Config{StateDir: filepath.Join(dir, "state"), Root: root, Now: w.clock, Reboot: Reboot{BootIDPath: filepath.Join(root, "boot_id")},
		Handlers: func(string) (Handler, error) { return &reader{got: map[string]string{}}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	d := &Daemon{Agent: a, Sources: w.sources(t.TempDir()), Reporter: &memReporter{got: map[int64]Event{}}, Options: CycleOptions{AgentID: "agent-1", Facts: debian12}}
	if err := d.applyPolicy(FileConfig{Mode: "download"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := d.fullOn(context.Background(), `"tag-1"`, "test"); err != nil {
		t.Fatal(err)
	}
	w.ss.serve("/metadata/timestamp.json", []byte("garbage"))
	return w, d, root
}

func TestCheckInUnchangedRunsWhatIsDue(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(w *world, d *Daemon, root string)
		why    string // "" = the cycle is skipped
	}{
		{"nothing changed", func(*world, *Daemon, string) {}, ""},
		{"an hour later", func(w *world, _ *Daemon, _ string) { w.now = w.now.Add(time.Hour) }, ""},
		{"stale", func(w *world, _ *Daemon, _ string) { w.now = w.now.Add(FreshFor) }, "older than"},
		{"clock set back", func(w *world, _ *Daemon, _ string) { w.now = w.now.Add(-time.Minute) }, "older than"},
		{"deadline passed", func(w *world, d *Daemon, _ string) {
			d.recheck = w.now.Add(time.Minute)
			w.now = w.now.Add(time.Minute)
		}, "deadline"},
		{"deadline ahead", func(w *world, d *Daemon, _ string) { d.recheck = w.now.Add(time.Minute) }, ""},
		{"package installed by hand", func(_ *world, _ *Daemon, root string) {
			os.WriteFile(filepath.Join(root, "var/lib/dpkg/status"), []byte("Package: curl\n"), 0o644)
		}, "package database"},
		{"policy changed", func(_ *world, d *Daemon, _ string) { d.applyPolicy(FileConfig{Mode: "auto"}, nil) }, "policy"},
		{"rebooted with updates pending", func(_ *world, d *Daemon, root string) {
			d.Agent.store.st.PendingBootID = "boot-1"
			os.WriteFile(filepath.Join(root, "boot_id"), []byte("boot-2\n"), 0o644)
		}, "rebooted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, d, root := freshDaemon(t)
			tc.change(w, d, root)
			err := d.CheckInUnchanged(context.Background())
			o := d.LastOutcome()
			if tc.why == "" {
				if err != nil || o.Full {
					t.Fatalf("ran a full cycle (%+v): %v", o, err)
				}
				return
			}
			if err == nil || !o.Full || !strings.Contains(o.Why, tc.why) {
				t.Fatalf("want a full cycle because %q; got %+v, err %v", tc.why, o, err)
			}
		})
	}
}

// The last full cycle is kept for the next process (run --once): its ETag,
// time and fingerprints, in a 0600 file; a new daemon that loads it is
// fresh and asks conditionally; a damaged file means a full cycle.
func TestCheckinStateKeptForTheNextProcess(t *testing.T) {
	w, d, _ := freshDaemon(t)
	p := filepath.Join(d.Agent.cfg.StateDir, checkinFile)
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s is %v, want 0600", p, fi.Mode().Perm())
	}
	d.Agent.Close()
	reopen := func() (*Daemon, *ServerClient) {
		a, err := Open(d.Agent.cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close() })
		nd := &Daemon{Agent: a, Sources: d.Sources, Options: d.Options}
		if err := nd.applyPolicy(FileConfig{Mode: "download"}, nil); err != nil {
			t.Fatal(err)
		}
		sc := NewServerClient(nil, &Enrollment{}, "m")
		nd.LoadLastFull(sc)
		return nd, sc
	}
	nd, sc := reopen()
	if sc.ETag() != `"tag-1"` {
		t.Fatalf("ETag %q after loading", sc.ETag())
	}
	if f := nd.freshness(); !f.Fresh || !f.LastFull.Equal(w.now) {
		t.Fatalf("a new process is not fresh: %+v", f)
	}
	nd.Agent.Close()
	os.WriteFile(p, []byte("{garbage"), 0o600)
	nd, sc = reopen()
	if f := nd.freshness(); f.Fresh || sc.ETag() != "" {
		t.Fatalf("a damaged checkin.json was trusted: %+v, ETag %q", f, sc.ETag())
	}
}

func TestRecheckAt(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	soon, later, past := now.Add(time.Hour), now.Add(48*time.Hour), now.Add(-time.Hour)
	a := &Agent{cfg: Config{Now: func() time.Time { return now }}}
	dl := func(t *time.Time) func(*catalog.Update, *approval.Approval) {
		return func(_ *catalog.Update, a *approval.Approval) { a.Deadline = t }
	}
	for _, tc := range []struct {
		name    string
		mode    Mode
		state   State
		cands   []Candidate
		waiting bool
		want    time.Time
	}{
		{"no deadline", ModeAuto, StateNeeded, []Candidate{cand("BW-1", catalog.SeverityLow, nil)}, true, time.Time{}},
		{"earliest deadline", ModeDownload, StateNeeded, []Candidate{cand("BW-1", catalog.SeverityLow, dl(&later)), cand("BW-2", catalog.SeverityLow, dl(&soon))}, true, soon},
		{"deadline passed", ModeDownload, StateNeeded, []Candidate{cand("BW-1", catalog.SeverityLow, dl(&past))}, false, time.Time{}},
		{"installed", ModeDownload, StateInstalled, []Candidate{cand("BW-1", catalog.SeverityLow, dl(&soon))}, false, time.Time{}},
		{"not applicable", ModeDownload, StateNotApplicable, []Candidate{cand("BW-1", catalog.SeverityLow, dl(&soon))}, false, time.Time{}},
		{"failed", ModeDownload, StateFailed, []Candidate{cand("BW-1", catalog.SeverityLow, dl(&soon))}, false, soon},
		{"scheduled, waiting for the window", ModeScheduled, StateDownloaded, []Candidate{cand("BW-1", catalog.SeverityLow, nil)}, true, now},
		{"scheduled, nothing waiting", ModeScheduled, StateInstalled, []Candidate{cand("BW-1", catalog.SeverityLow, nil)}, false, time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a.cfg.Policy.Mode = tc.mode
			p := &Plan{Decisions: map[string]Decision{}}
			for _, c := range tc.cands {
				p.Decisions[c.Key()] = Decision{State: tc.state}
			}
			if got := a.recheckAt(tc.cands, p, tc.waiting); !got.Equal(tc.want) {
				t.Fatalf("recheck %v, want %v", got, tc.want)
			}
		})
	}
}
