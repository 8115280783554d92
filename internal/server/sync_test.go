package server

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/fetch"
	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/tuf"
	"github.com/bulwarkhq/bulwark/internal/wire"
)

func upstreamOf(t testing.TB, up *testServer, rootSum string, mod func(*Upstream)) Config {
	t.Helper()
	u := &Upstream{URL: up.url, CAFingerprint: up.CAFingerprint(), Interval: time.Hour,
		Vendors: []UpstreamVendor{{Name: "example", RootFingerprint: rootSum}}}
	if mod != nil {
		mod(u)
	}
	return Config{Upstream: u}
}

func mustSync(t testing.TB, ts *testServer) []store.SyncRun {
	t.Helper()
	runs, err := ts.SyncAll(context.Background(), "", "manual")
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	return runs
}

// TestEndToEndChain: a vendor repository published with the repository
// tool → upstream server → site server syncs → admin approves for a group →
// the site's approvals verify from the site root and carry hashes equal to
// the vendor's; then a third level (branch) does the same from the site.
func TestEndToEndChain(t *testing.T) {
	v := newVendorRepo(t, "example")
	v.publish(t, "BW-1", "critical", map[string]string{"libssl3.deb": strings.Repeat("ssl", 10000)})
	v.publish(t, "BW-2", "low", map[string]string{"tool.deb": "tool"})
	rootSum := tuf.RootFingerprint(v.root(t))
	want := vendorTargets(t, v.root(t), v.dir, "BW-1")

	up := startServer(t, Config{Vendors: []HostedVendor{{Name: "example", Dir: v.dir}}})
	site := startServer(t, upstreamOf(t, up, rootSum, nil))
	branch := startServer(t, upstreamOf(t, site, rootSum, nil))

	for _, level := range []*testServer{site, branch} {
		runs := mustSync(t, level)
		if len(runs) != 1 || runs[0].Status != store.SyncOK {
			t.Fatalf("sync runs = %+v", runs)
		}
		// The mirror verifies from the vendor root on its own.
		rep, err := tuf.Verify(context.Background(), filepath.Join(level.cfg.DataDir, mirrorsDir, "example"), v.root(t), time.Now())
		if err != nil || !rep.OK() || rep.Updates != 2 {
			t.Fatalf("mirror verify: %+v %v", rep, err)
		}
		var ul struct{ Updates []UpdateView }
		json.Unmarshal(level.admin("GET", "/api/v1/updates", nil, 200), &ul)
		if len(ul.Updates) != 2 {
			t.Fatalf("update index has %d updates, want 2", len(ul.Updates))
		}
		level.admin("POST", "/api/v1/groups", GroupRequest{Name: "web"}, http.StatusCreated)
		level.admin("PUT", "/api/v1/groups/web/approvals/example/BW-1", ApprovalRequest{Action: "install", Rollout: 50}, 200)
		checkApproved(t, siteApprovals(t, level, "web"), "example", "BW-1", "install", want)

		// An agent of this level downloads the payload from it, verified from
		// the vendor root.
		c, err := tuf.NewClient(tuf.ClientConfig{TrustedRoot: v.root(t), MetadataURL: level.url + "/repos/example/metadata",
			TargetsURL: level.url + "/repos/example/targets", CacheDir: t.TempDir(), Fetcher: fetch.New(fetch.Options{HTTPClient: level.client})})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		if err := c.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		info, err := c.Update(ctx, "BW-1")
		if err != nil {
			t.Fatal(err)
		}
		tf, err := c.Payload(ctx, info, "libssl3.deb")
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(t.TempDir(), "libssl3.deb")
		if err := c.Download(ctx, tf, dst, fetch.FileOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	// Nothing new upstream: the next sync changes nothing.
	if runs := mustSync(t, site); runs[0].Changed || runs[0].PayloadsFetched != 0 {
		t.Fatalf("idle sync = %+v", runs[0])
	}
	// A new update reaches the branch through the site.
	v.publish(t, "BW-3", "important", map[string]string{"fix.deb": "fix"})
	mustSync(t, up)
	if runs := mustSync(t, site); !runs[0].Changed || runs[0].PayloadsFetched != 1 {
		t.Fatalf("sync after a publish = %+v", runs[0])
	}
	mustSync(t, branch)
	branch.admin("PUT", "/api/v1/groups/web/approvals/example/BW-3", ApprovalRequest{Action: "install"}, 200)
	checkApproved(t, siteApprovals(t, branch, "web"), "example", "BW-3", "install", vendorTargets(t, v.root(t), v.dir, "BW-3"))
	var hist struct{ Runs []store.SyncRun }
	json.Unmarshal(branch.admin("GET", "/api/v1/sync", nil, 200), &hist)
	if len(hist.Runs) < 2 {
		t.Fatalf("sync history = %+v", hist.Runs)
	}
}

func TestSyncRefusesWrongVendorRoot(t *testing.T) {
	v := newVendorRepo(t, "example")
	v.publish(t, "BW-1", "critical", map[string]string{"a.deb": "a"})
	other := newVendorRepo(t, "example")
	up := startServer(t, Config{Vendors: []HostedVendor{{Name: "example", Dir: v.dir}}})
	site := startServer(t, upstreamOf(t, up, tuf.RootFingerprint(other.root(t)), nil))
	runs, err := site.SyncAll(context.Background(), "", "manual")
	if err == nil || len(runs) != 1 || runs[0].Status != store.SyncFailed || !strings.Contains(runs[0].Error, "fingerprint") {
		t.Fatalf("sync with the wrong root pin: %+v %v", runs, err)
	}
	resp, _ := get(t, site.client, site.url+"/repos/example/metadata/timestamp.json", nil)
	if resp.StatusCode != 404 {
		t.Fatalf("a refused sync serves metadata: %d", resp.StatusCode)
	}
	if _, err := os.Stat(filepath.Join(site.cfg.DataDir, rootsDir, "example.json")); err == nil {
		t.Fatal("a root with the wrong fingerprint was pinned")
	}
}

func TestSyncRefusesWrongUpstreamCA(t *testing.T) {
	v := newVendorRepo(t, "example")
	up := startServer(t, Config{Vendors: []HostedVendor{{Name: "example", Dir: v.dir}}})
	impostor := startServer(t, Config{})
	cfg := upstreamOf(t, up, tuf.RootFingerprint(v.root(t)), nil)
	cfg.Upstream.CAFingerprint = impostor.CAFingerprint()
	site := startServer(t, cfg)
	if _, err := site.SyncAll(context.Background(), "", "manual"); err == nil || !strings.Contains(err.Error(), "pinned CA") && !strings.Contains(err.Error(), "fingerprint") {
		t.Fatalf("sync from an upstream with another CA: %v", err)
	}
}

func TestSyncFiltersAndMetadataOnly(t *testing.T) {
	v := newVendorRepo(t, "example")
	v.publish(t, "BW-1", "critical", map[string]string{"a.deb": "aaaa"})
	v.publish(t, "BW-2", "low", map[string]string{"b.deb": "bbbb"})
	up := startServer(t, Config{Vendors: []HostedVendor{{Name: "example", Dir: v.dir}}})

	filtered := startServer(t, upstreamOf(t, up, tuf.RootFingerprint(v.root(t)), func(u *Upstream) { u.Severities = []string{"critical"} }))
	mustSync(t, filtered) // the start-up sync may have run already; either way the files tell
	if got := payloadFiles(t, filtered); strings.Join(got, ",") != "a.deb" {
		t.Fatalf("filtered mirror holds payloads %v, want only a.deb", got)
	}
	metaOnly := startServer(t, upstreamOf(t, up, tuf.RootFingerprint(v.root(t)), func(u *Upstream) { u.MetadataOnly = true }))
	mustSync(t, metaOnly)
	if got := payloadFiles(t, metaOnly); len(got) != 0 {
		t.Fatalf("metadata-only mirror holds payloads %v", got)
	}
	// Agents of a metadata-only server are sent to the upstream for payloads,
	// and approvals still carry the vendor's hashes.
	a := metaOnly.enroll(metaOnly.first.EnrollToken, machineA, "")
	if len(a.resp.Vendors) != 1 || a.resp.Vendors[0].TargetsURL != up.url+"/repos/example/targets" {
		t.Fatalf("metadata-only enrollment vendors = %+v", a.resp.Vendors)
	}
	// An agent enrolled before the first sync learns the vendor afterwards.
	// The start sync reaches the upstream through a gate held shut until
	// the agent has enrolled.
	gate, open := gatedRelay(t, strings.TrimPrefix(up.url, "https://"))
	early := startServerSyncing(t, upstreamOf(t, up, tuf.RootFingerprint(v.root(t)), func(u *Upstream) { u.URL, u.Interval = "https://"+gate, time.Hour }))
	ea := early.enroll(early.first.EnrollToken, machineB, "")
	if len(ea.resp.Vendors) != 0 {
		t.Fatalf("enrolled before the first sync, the agent was sent vendors %+v", ea.resp.Vendors)
	}
	open()
	early.waitStartSync()
	code, body, hdr := early.agentDo(ea, ea.client, "GET", "/agent/v1/vendors", nil, nil)
	var vs struct{ Vendors []wire.RepoRef }
	json.Unmarshal(body, &vs)
	if code != 200 || len(vs.Vendors) != 1 || string(vs.Vendors[0].Root) != string(v.root(t)) {
		t.Fatalf("vendors: %d %s", code, body)
	}
	if code, _, _ := early.agentDo(ea, ea.client, "GET", "/agent/v1/vendors", nil, map[string]string{"If-None-Match": hdr.Get("ETag")}); code != http.StatusNotModified {
		t.Fatalf("unchanged vendors: %d, want 304", code)
	}
	metaOnly.admin("PUT", "/api/v1/groups/default/approvals/example/BW-2", ApprovalRequest{Action: "install"}, 200)
	checkApproved(t, siteApprovals(t, metaOnly, "default"), "example", "BW-2", "install", vendorTargets(t, v.root(t), v.dir, "BW-2"))
}

// gatedRelay relays a new loopback port to target ("host:port") once open
// is called; connections made before wait for it.
func gatedRelay(t testing.TB, target string) (addr string, open func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opened, done := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	closed := false
	track := func(c net.Conn) bool { // false: the test ended, c is closed
		mu.Lock()
		defer mu.Unlock()
		if closed {
			c.Close()
			return false
		}
		conns = append(conns, c)
		return true
	}
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if !track(c) {
				return
			}
			wg.Go(func() {
				select {
				case <-opened:
				case <-done:
					return
				}
				d, err := net.Dial("tcp", target)
				if err != nil {
					c.Close()
					return
				}
				if !track(d) {
					c.Close()
					return
				}
				wg.Go(func() { io.Copy(d, c); d.Close() })
				io.Copy(c, d)
				c.Close()
			})
		}
	})
	t.Cleanup(func() {
		close(done)
		ln.Close()
		mu.Lock()
		closed = true
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	var once sync.Once
	return ln.Addr().String(), func() { once.Do(func() { close(opened) }) }
}

// payloadFiles lists the payload names (without hash prefix) in a server's
// mirror of "example".
func payloadFiles(t testing.TB, ts *testServer) []string {
	t.Helper()
	var out []string
	filepath.Walk(filepath.Join(ts.cfg.DataDir, mirrorsDir, "example", "targets"), func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() && strings.HasSuffix(p, ".deb") {
			_, name, _ := strings.Cut(filepath.Base(p), ".")
			out = append(out, name)
		}
		return nil
	})
	return out
}

// TestSyncSchedule: syncs run at start, on the interval, and on demand
// through the API, each recorded with its trigger.
func TestSyncSchedule(t *testing.T) {
	v := newVendorRepo(t, "example")
	v.publish(t, "BW-1", "critical", map[string]string{"a.deb": "a"})
	up := startServer(t, Config{Vendors: []HostedVendor{{Name: "example", Dir: v.dir}}})
	site := startServer(t, upstreamOf(t, up, tuf.RootFingerprint(v.root(t)), func(u *Upstream) { u.Interval, u.Jitter = 300*time.Millisecond, 100*time.Millisecond }))
	site.waitSync("start")
	site.waitSync("schedule")
	site.admin("POST", "/api/v1/sync", SyncRequest{Vendor: "example"}, http.StatusAccepted)
	site.waitSync("manual")
	site.admin("POST", "/api/v1/sync", SyncRequest{Vendor: "nope"}, http.StatusNotFound)
}

// TestReplicaInheritsGroupsAndApprovals: a replica takes its upstream's
// groups and approvals at each sync, signs them with its own site root and
// targets it verified itself, and refuses local changes to them.
func TestReplicaInheritsGroupsAndApprovals(t *testing.T) {
	// The replica reads the upstream's lists a page of one at a time, so
	// every list here spans pages (upstreamList follows next).
	defer func(n int) { replicaPageLimit = n }(replicaPageLimit)
	replicaPageLimit = 1
	v := newVendorRepo(t, "example")
	v.publish(t, "BW-1", "critical", map[string]string{"a.deb": "aaaa"})
	v.publish(t, "BW-2", "low", map[string]string{"b.deb": "bb"})
	up := startServer(t, Config{Vendors: []HostedVendor{{Name: "example", Dir: v.dir}}})
	mustSync(t, up)
	up.admin("POST", "/api/v1/groups", GroupRequest{Name: "web"}, http.StatusCreated)
	up.admin("POST", "/api/v1/groups", GroupRequest{Name: "db"}, http.StatusCreated)
	up.admin("PUT", "/api/v1/groups/web/approvals/example/BW-1", ApprovalRequest{Action: "install", Rollout: 40}, 200)
	up.admin("PUT", "/api/v1/groups/db/approvals/example/BW-2", ApprovalRequest{Action: "decline"}, 200)
	viewer := up.newToken(TokenRequest{Kind: "api", Role: "viewer"})

	rep := startServer(t, upstreamOf(t, up, tuf.RootFingerprint(v.root(t)), func(u *Upstream) { u.Mode, u.Token = ModeReplica, viewer }))
	runs := mustSync(t, rep)
	if last := runs[len(runs)-1]; last.Vendor != ReplicaRun || last.Status != store.SyncOK {
		t.Fatalf("replica runs = %+v", runs)
	}
	checkApproved(t, siteApprovals(t, rep, "web"), "example", "BW-1", "install", vendorTargets(t, v.root(t), v.dir, "BW-1"))
	if a := siteApprovals(t, rep, "web").Find("example", "BW-1"); a.Rollout != 40 {
		t.Fatalf("rollout = %d, want 40", a.Rollout)
	}
	if a := siteApprovals(t, rep, "db").Find("example", "BW-2"); a == nil || a.Action != "decline" {
		t.Fatalf("db approvals = %+v", a)
	}
	// Local changes are refused; computers are still the replica's own.
	code, body, _ := rep.do(rep.client, "PUT", "/api/v1/groups/web/approvals/example/BW-2", rep.first.AdminToken, ApprovalRequest{Action: "install"})
	if code != http.StatusConflict || !strings.Contains(string(body), "replica") {
		t.Fatalf("local approval on a replica: %d %s", code, body)
	}
	rep.admin("POST", "/api/v1/groups", GroupRequest{Name: "local"}, http.StatusConflict)
	a := rep.enroll(rep.newToken(TokenRequest{Kind: "enroll", Group: "web"}), machineA, "")
	if a.resp.Group != "web" {
		t.Fatalf("agent group %q", a.resp.Group)
	}

	// Upstream changes arrive with the next sync: an approval removed, a
	// group deleted (its computers here move to default).
	up.admin("DELETE", "/api/v1/groups/web/approvals/example/BW-1", nil, http.StatusNoContent)
	up.admin("DELETE", "/api/v1/groups/db", nil, http.StatusNoContent)
	mustSync(t, rep)
	if d := siteApprovals(t, rep, "web"); len(d.Updates) != 0 {
		t.Fatalf("removed upstream approval still signed: %+v", d.Updates)
	}
	gs, _ := rep.st.ListGroups(context.Background())
	var names []string
	for _, g := range gs {
		names = append(names, g.Name)
	}
	if strings.Join(names, ",") != "default,web" {
		t.Fatalf("replica groups = %v, want default,web", names)
	}

	// A replica without a usable token is refused at start.
	cfg := upstreamOf(t, up, tuf.RootFingerprint(v.root(t)), func(u *Upstream) { u.Mode = ModeReplica })
	cfg.DataDir = filepath.Join(t.TempDir(), "r2")
	if _, _, err := Open(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "token") {
		t.Fatalf("replica without a token: %v", err)
	}
}
