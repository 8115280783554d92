package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/tuf"
	"github.com/bulwarkhq/bulwark/internal/wire"
)

// memReporter is a hand-written Reporter standing in for the update server
// (whose real endpoint has its own tests): it stores events by sequence, as
// the server deduplicates, and can be made to fail.
type memReporter struct {
	fail   bool
	got    map[int64]Event
	calls  int
	maxSeq int64
	// lockdown are the lockdown audits delivered, in order.
	lockdown []*wire.LockdownAudit
}

func (m *memReporter) Report(_ context.Context, r Report) (int64, error) {
	m.calls++
	if m.fail {
		return 0, errors.New("server unreachable")
	}
	if r.Lockdown != nil {
		m.lockdown = append(m.lockdown, r.Lockdown)
	}
	for _, e := range r.Events {
		m.got[e.Seq] = e
		if e.Seq > m.maxSeq {
			m.maxSeq = e.Seq
		}
	}
	return m.maxSeq, nil
}

func TestDaemonDownloadModeWaitsThenInstallsOnRequest(t *testing.T) {
	w := newWorld(t)
	w.publish("BW-1", "", map[string]string{"a.deb": "a"})
	w.publish("BW-2", "", map[string]string{"b.deb": "b"})
	w.approve("web", "BW-1", "BW-2")
	h := &reader{got: map[string]string{}}
	a, err := Open(Config{StateDir: filepath.Join(t.TempDir(), "state"), Now: w.clock, Policy: Policy{Mode: ModeDownload},
		Handlers: func(string) (Handler, error) { return h, nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	rep := &memReporter{got: map[int64]Event{}, fail: true}
	d := &Daemon{Agent: a, Sources: w.sources(t.TempDir()), Reporter: rep, Options: CycleOptions{AgentID: "agent-1", Facts: debian12}}

	// The server is down: the cycle still downloads; the report waits.
	if err := d.CheckIn(context.Background()); err == nil {
		t.Fatal("check-in with the server down reported no error")
	}
	if len(h.got) != 0 {
		t.Fatal("download mode installed without a person asking")
	}
	if st := d.Status(); st.States[StateDownloaded] != 2 || st.LastError == "" {
		t.Fatalf("status %+v", st)
	}
	// The server is back: every state change so far arrives.
	rep.fail = false
	if err := d.CheckIn(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(rep.got) < 2 || len(a.store.pending(100)) != 0 {
		t.Fatalf("server got %d events, %d still queued", len(rep.got), len(a.store.pending(100)))
	}

	var phases []string
	res, err := d.InstallNow(context.Background(), []string{"BW-2"}, false, func(p Progress) { phases = append(phases, p.Update+":"+p.Phase) })
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Pass.Installed) != 1 || res.Pass.Installed[0] != "debian/BW-2" || h.got["BW-2/b.deb"] != "b" || len(h.got) != 1 {
		t.Fatalf("install now: %+v, handler %v", res.Pass, h.got)
	}
	if len(phases) == 0 || phases[len(phases)-1] != "debian/BW-2:install" {
		t.Fatalf("progress %v", phases)
	}
	last := rep.got[rep.maxSeq]
	if last.Key != "debian/BW-2" || last.State != StateInstalled {
		t.Fatalf("the install was not reported: last event %+v", last)
	}
}

func TestCheckInUnchangedSkipsTheCycleWhileFresh(t *testing.T) {
	w := newWorld(t)
	w.publish("BW-1", "", map[string]string{"a.deb": "a"})
	w.approve("web", "BW-1")
	a, err := Open(Config{StateDir: filepath.Join(t.TempDir(), "state"), Now: w.clock, Policy: Policy{Mode: ModeDownload},
		Handlers: func(string) (Handler, error) { return &reader{got: map[string]string{}}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	rep := &memReporter{got: map[int64]Event{}}
	d := &Daemon{Agent: a, Sources: w.sources(t.TempDir()), Reporter: rep, Options: CycleOptions{AgentID: "agent-1", Facts: debian12}}
	if err := d.CheckIn(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The site's repository now answers garbage: a full cycle would fail.
	w.ss.serve("/metadata/timestamp.json", []byte("garbage"))
	calls := rep.calls
	if err := d.CheckInUnchanged(context.Background()); err != nil {
		t.Fatalf("an unchanged check-in within %v ran a full cycle: %v", FreshFor, err)
	}
	if rep.calls != calls {
		t.Fatal("an unchanged check-in with nothing queued sent a report")
	}
	w.now = w.now.Add(FreshFor + time.Minute)
	if err := d.CheckInUnchanged(context.Background()); err == nil {
		t.Fatal("an unchanged check-in after FreshFor did not run a full cycle")
	}
}

func TestAddVendorsLearnedAfterEnrollment(t *testing.T) {
	w := newWorld(t)
	w.publish("BW-1", "", map[string]string{"a.deb": "a"})
	w.approve("web", "BW-1")
	h := &reader{got: map[string]string{}}
	a, err := Open(Config{StateDir: filepath.Join(t.TempDir(), "state"), Now: w.clock, Policy: Policy{Mode: ModeAuto, AutoInstallSeverity: "low"},
		Handlers: func(string) (Handler, error) { return h, nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	cache := t.TempDir()
	all := w.sources(cache)
	var remembered []string
	d := &Daemon{Agent: a, Sources: Sources{Site: all.Site, Vendors: map[string]*tuf.Client{}, Group: "web"}, Options: CycleOptions{AgentID: "a", Facts: debian12},
		newVendor: func(r wire.RepoRef) (*tuf.Client, error) { return all.Vendors[r.Name], nil },
		remember:  func(r wire.RepoRef) error { remembered = append(remembered, r.Name); return nil }}
	if err := d.CheckIn(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(h.got) != 0 || a.state("debian/BW-1").State != StateFailed {
		t.Fatalf("an update from an unknown vendor was not refused: %+v", a.state("debian/BW-1"))
	}
	if d.KnowsVendors([]string{"debian"}) {
		t.Fatal("knows a vendor it was never given")
	}
	root, err := os.ReadFile(filepath.Join(w.vendorDir, "metadata", "1.root.json"))
	if err != nil {
		t.Fatal(err)
	}
	other, _ := os.ReadFile(filepath.Join(w.siteDir, "metadata", "1.root.json"))
	// A name that would be a path, a vendor the site does not sign and a
	// root that is not the signed one are refused.
	refused := []wire.RepoRef{{Name: "/../../x", Root: root}, {Name: "..", Root: root}, {Name: "evil", Root: other}, {Name: "debian", Root: other}}
	if added, err := d.AddVendors(context.Background(), refused); err != nil || len(added) != 0 || len(remembered) != 0 {
		t.Fatalf("added %v remembered %v: %v", added, remembered, err)
	}
	added, err := d.AddVendors(context.Background(), []wire.RepoRef{{Name: "debian", Root: root}})
	if err != nil || len(added) != 1 || len(remembered) != 1 {
		t.Fatalf("added %v remembered %v: %v", added, remembered, err)
	}
	if again, _ := d.AddVendors(context.Background(), []wire.RepoRef{{Name: "debian", Root: root}}); len(again) != 0 {
		t.Fatal("a known vendor was added again (its root replaced)")
	}
	if err := d.CheckIn(context.Background()); err != nil {
		t.Fatal(err)
	}
	if h.got["BW-1/a.deb"] != "a" {
		t.Fatal("the update was not installed once its vendor was known")
	}
}
