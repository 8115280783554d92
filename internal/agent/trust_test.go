package agent

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/theupdateframework/go-tuf/v2/metadata"

	"github.com/bulwarkhq/bulwark/internal/approval"
	"github.com/bulwarkhq/bulwark/internal/catalog"
)

// reader is a hand-written Handler that records the bytes of every payload
// it is given, so tests can check that only genuine bytes reach an
// installer. (The real dpkg handler is exercised in the end-to-end test.)
type reader struct{ got map[string]string }

func (r *reader) Install(_ context.Context, u *catalog.Update, files map[string]string) (bool, error) {
	for name, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			return false, err
		}
		r.got[u.ID+"/"+name] = string(b)
	}
	return false, nil
}
func (r *reader) Uninstall(context.Context, *catalog.Update, map[string]string) (bool, error) {
	return false, nil
}

func (w *world) agent(t *testing.T, h *reader) *Agent {
	t.Helper()
	a, err := Open(Config{StateDir: filepath.Join(t.TempDir(), "state"), Now: w.clock,
		Policy:   Policy{Mode: ModeAuto, AutoInstallSeverity: catalog.SeverityLow},
		Handlers: func(string) (Handler, error) { return h, nil }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

func (a *Agent) state(key string) UpdateRecord {
	for _, r := range a.Updates() {
		if r.Key == key {
			return r
		}
	}
	return UpdateRecord{}
}

func targetURL(t *testing.T, dir, p string) string {
	t.Helper()
	d, base := filepath.Split(p)
	entries, err := os.ReadDir(filepath.Join(dir, "targets", d))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), "."+base) {
			return "/targets/" + d + e.Name()
		}
	}
	t.Fatalf("no target file for %s", p)
	return ""
}

func TestCycleInstallsWhatBothRootsAgreeOn(t *testing.T) {
	w := newWorld(t)
	w.publish("BW-1", "", map[string]string{"a.deb": "genuine a"})
	w.approve("web", "BW-1")
	h := &reader{got: map[string]string{}}
	a := w.agent(t, h)
	res, err := a.Cycle(context.Background(), w.sources(t.TempDir()), CycleOptions{AgentID: "agent-1", Facts: debian12})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Pass.Installed) != 1 || h.got["BW-1/a.deb"] != "genuine a" {
		t.Fatalf("cycle %+v, handler got %v", res, h.got)
	}
	if s := a.state("debian/BW-1").State; s != StateInstalled {
		t.Fatalf("state %s", s)
	}
	if _, err := os.Stat(filepath.Join(a.cfg.StateDir, "downloads", "debian", "BW-1")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("downloads of an installed update were kept")
	}
}

// The trust attacks of issue 4, one named test each.
func TestAttackCompromisedSiteApprovesUnsignedPayload(t *testing.T) {
	for _, variant := range []string{"changed hash", "extra file", "update the vendor never published"} {
		t.Run(variant, func(t *testing.T) {
			w := newWorld(t)
			w.publish("BW-1", "", map[string]string{"a.deb": "genuine a"})
			doc := w.approve("web", "BW-1")
			// The attacker holds the site's online keys and signs approvals
			// of their own.
			switch variant {
			case "changed hash":
				doc.Updates[0].Targets[0].SHA256 = strings.Repeat("e", 64)
			case "extra file":
				doc.Updates[0].Targets = append(doc.Updates[0].Targets, approval.Target{Path: "updates/BW-1/evil.deb", Length: 5, SHA256: strings.Repeat("a", 64)})
			case "update the vendor never published":
				doc.Updates = append(doc.Updates, approval.Approval{Vendor: "debian", ID: "BW-666", Action: approval.ActionInstall, Rollout: 100,
					Targets: []approval.Target{{Path: "updates/BW-666/update.json", Length: 10, SHA256: strings.Repeat("b", 64)}}})
				doc.Updates[0].Action = approval.ActionDecline
			}
			if err := w.site.SetApprovals(context.Background(), doc); err != nil {
				t.Fatal(err)
			}
			h := &reader{got: map[string]string{}}
			a := w.agent(t, h)
			res, err := a.Cycle(context.Background(), w.sources(t.TempDir()), CycleOptions{AgentID: "agent-1", Facts: debian12})
			if err != nil {
				t.Fatal(err)
			}
			if len(h.got) != 0 || len(res.Pass.Installed) != 0 {
				t.Fatalf("installed %v from approvals the vendor never signed", h.got)
			}
			key := "debian/BW-1"
			if variant == "update the vendor never published" {
				key = "debian/BW-666"
			}
			if s := a.state(key); s.State != StateFailed {
				t.Fatalf("%s: %+v, want failed", key, s)
			}
		})
	}
}

func TestAttackCompromisedMirrorModifiesUpdateJSON(t *testing.T) {
	w := newWorld(t)
	w.publish("BW-1", "", map[string]string{"a.deb": "genuine a"})
	w.approve("web", "BW-1")
	u := targetURL(t, w.vendorDir, "updates/BW-1/update.json")
	b, _ := os.ReadFile(filepath.Join(w.vendorDir, u))
	// The mirror changes the installer (the WSUSpect idea: keep the trusted
	// name, change what runs) and drops the applicability rules.
	evil := strings.Replace(string(b), `"type": "archive"`, `"type": "lockdown"`, 1)
	w.vs.serve(u, []byte(evil))
	h := &reader{got: map[string]string{}}
	a := w.agent(t, h)
	if _, err := a.Cycle(context.Background(), w.sources(t.TempDir()), CycleOptions{AgentID: "agent-1", Facts: debian12}); err != nil {
		t.Fatal(err)
	}
	if len(h.got) != 0 {
		t.Fatal("installed from a modified update.json")
	}
	if s := a.state("debian/BW-1"); s.State != StateFailed || !strings.Contains(s.Reason, "update.json") {
		t.Fatalf("state %+v", s)
	}
}

func TestAttackTamperedPayloadRefusedDeletedFetchedAgain(t *testing.T) {
	w := newWorld(t)
	w.publish("BW-1", "", map[string]string{"a.deb": "genuine payload"})
	w.approve("web", "BW-1")
	u := targetURL(t, w.vendorDir, "updates/BW-1/a.deb")
	w.vs.serve(u, []byte("tampered payload"))
	h := &reader{got: map[string]string{}}
	a := w.agent(t, h)
	src := w.sources(t.TempDir())
	if _, err := a.Cycle(context.Background(), src, CycleOptions{AgentID: "agent-1", Facts: debian12}); err != nil {
		t.Fatal(err)
	}
	if len(h.got) != 0 || a.state("debian/BW-1").State != StateFailed {
		t.Fatalf("tampered payload: installed %v, state %+v", h.got, a.state("debian/BW-1"))
	}
	left, _ := filepath.Glob(filepath.Join(a.cfg.StateDir, "downloads", "debian", "BW-1", "*"))
	if len(left) != 0 {
		t.Fatalf("refused bytes left on disk: %v", left)
	}
	// The mirror is repaired; the next cycle fetches again and installs
	// the genuine bytes.
	w.vs.reset()
	if _, err := a.Cycle(context.Background(), src, CycleOptions{AgentID: "agent-1", Facts: debian12}); err != nil {
		t.Fatal(err)
	}
	if h.got["BW-1/a.deb"] != "genuine payload" || a.state("debian/BW-1").State != StateInstalled {
		t.Fatalf("after repair: %v %+v", h.got, a.state("debian/BW-1"))
	}
}

func TestAttackInjectedUnsignedApprovals(t *testing.T) {
	w := newWorld(t)
	w.publish("BW-1", "", map[string]string{"a.deb": "genuine a"})
	w.approve("web")
	// A man in the middle (the WSUSpect attack) injects a timestamp with
	// no signatures pointing at approvals of their making.
	ts, err := metadata.Timestamp().FromFile(filepath.Join(w.siteDir, "metadata", "timestamp.json"))
	if err != nil {
		t.Fatal(err)
	}
	ts.Signed.Version += 10
	ts.ClearSignatures()
	b, _ := ts.ToBytes(false)
	w.ss.serve("/metadata/timestamp.json", b)
	h := &reader{got: map[string]string{}}
	a := w.agent(t, h)
	_, err = a.Cycle(context.Background(), w.sources(t.TempDir()), CycleOptions{AgentID: "agent-1", Facts: debian12})
	var unsigned *metadata.ErrUnsignedMetadata
	if !errors.As(err, &unsigned) || len(h.got) != 0 {
		t.Fatalf("injected unsigned timestamp: err = %v, installed %v", err, h.got)
	}
}

func TestAttackReplayedOldApprovals(t *testing.T) {
	w := newWorld(t)
	w.publish("BW-1", "", map[string]string{"a.deb": "genuine a"})
	w.approve("web", "BW-1")
	oldTS, _ := os.ReadFile(filepath.Join(w.siteDir, "metadata", "timestamp.json"))
	// The site withdraws its approval; the agent sees that.
	w.now = w.now.Add(time.Minute)
	if err := w.site.SetApprovals(context.Background(), &approval.Document{Group: "web"}); err != nil {
		t.Fatal(err)
	}
	h := &reader{got: map[string]string{}}
	a := w.agent(t, h)
	cache := t.TempDir()
	if _, err := a.Cycle(context.Background(), w.sources(cache), CycleOptions{AgentID: "agent-1", Facts: debian12}); err != nil {
		t.Fatal(err)
	}
	// An attacker replays the old, validly signed approvals.
	w.ss.serve("/metadata/timestamp.json", oldTS)
	_, err := a.Cycle(context.Background(), w.sources(cache), CycleOptions{AgentID: "agent-1", Facts: debian12})
	var rollback *metadata.ErrBadVersionNumber
	if !errors.As(err, &rollback) || len(h.got) != 0 {
		t.Fatalf("replayed approvals: err = %v, installed %v", err, h.got)
	}
}

func TestAttackExpiredMetadata(t *testing.T) {
	w := newWorld(t)
	w.publish("BW-1", "", map[string]string{"a.deb": "genuine a"})
	w.approve("web", "BW-1")
	h := &reader{got: map[string]string{}}
	a := w.agent(t, h)
	w.now = w.now.Add(48 * time.Hour) // nobody refreshed the site's timestamp
	_, err := a.Cycle(context.Background(), w.sources(t.TempDir()), CycleOptions{AgentID: "agent-1", Facts: debian12})
	var expired *metadata.ErrExpiredMetadata
	if !errors.As(err, &expired) || len(h.got) != 0 {
		t.Fatalf("expired metadata: err = %v, installed %v", err, h.got)
	}
}
