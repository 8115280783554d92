package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/content"
	"github.com/bulwarkhq/bulwark/internal/content/s3test"
	"github.com/bulwarkhq/bulwark/internal/store/postgres/pgtest"
	"github.com/bulwarkhq/bulwark/internal/wire"
)

// startReplicas starts two servers on one PostgreSQL database and one data
// directory (the shared content store), hosting one vendor repository.
func startReplicas(t *testing.T) (a, b *testServer, v *vendorRepo) {
	t.Helper()
	return startReplicasWith(t, nil)
}

// startReplicasWith is startReplicas with the content store replicas share
// (nil: the data and repository directories).
func startReplicasWith(t *testing.T, cs content.Store) (a, b *testServer, v *vendorRepo) {
	t.Helper()
	pg := pgtest.Start(t, pgtest.Options{})
	v = newVendorRepo(t, "example")
	for i := 1; i <= 4; i++ {
		v.publish(t, fmt.Sprintf("BW-%d", i), "critical", map[string]string{"a.deb": fmt.Sprint("payload ", i)})
	}
	cfg := Config{DataDir: filepath.Join(t.TempDir(), "data"), Database: pg.NewDatabase(t), Vendors: []HostedVendor{{Name: "example", Dir: v.dir}}, Content: cs}
	a = startServer(t, cfg)
	b = startServer(t, cfg)
	if _, err := a.SyncAll(context.Background(), "", "manual"); err != nil {
		t.Fatal(err)
	}
	return a, b, v
}

// TestReplicasAgentSwitchesMidCycle: an agent enrolled through one replica
// checks in and reports through both, alternating, and a retry through the
// other replica counts once: no report is lost or applied twice. With the
// targets in the repositories' directories, in a content directory, and in
// S3 (a real versitygw); with a content store the agent also downloads a
// payload through one replica and resumes it through the other.
func TestReplicasAgentSwitchesMidCycle(t *testing.T) {
	t.Run("directory", func(t *testing.T) {
		a, b, _ := startReplicas(t)
		agentSwitchesMidCycle(t, a, b)
	})
	t.Run("content directory", func(t *testing.T) {
		cs, err := content.OpenDir(filepath.Join(t.TempDir(), "content"))
		if err != nil {
			t.Fatal(err)
		}
		defer cs.Close()
		a, b, v := startReplicasWith(t, cs)
		ag := agentSwitchesMidCycle(t, a, b)
		resumeAcrossReplicas(t, a, b, v, ag)
	})
	t.Run("s3", func(t *testing.T) {
		a, b, v := startReplicasWith(t, s3test.Start(t).Open(t, "bulwark", "site-1"))
		ag := agentSwitchesMidCycle(t, a, b)
		resumeAcrossReplicas(t, a, b, v, ag)
	})
}

func agentSwitchesMidCycle(t *testing.T, a, b *testServer) *testAgent {
	t.Helper()
	tok := a.newToken(TokenRequest{Kind: "enroll", Group: "default", ExpiresIn: "1h"})
	ag := a.enroll(tok, machineA, "")
	if code, body, _ := b.agentDo(ag, ag.client, "GET", "/agent/v1/checkin", nil, nil); code != http.StatusOK {
		t.Fatalf("check-in through the other replica: %d %s", code, body)
	}
	now := time.Now().UTC()
	send := func(ts *testServer, batch, key string, want bool) {
		t.Helper()
		rep := wire.ReportRequest{BatchID: batch, Changes: []wire.StateChange{{Key: key, State: "installed", Time: now}}}
		code, body, _ := ts.agentDo(ag, ag.client, "POST", "/agent/v1/report", rep, nil)
		var r struct{ Applied bool }
		json.Unmarshal(body, &r)
		if code != http.StatusOK || r.Applied != want {
			t.Fatalf("report %s through %s: %d %s, want applied=%v", batch, ts.url, code, body, want)
		}
	}
	send(a, "b-1", "example/BW-1", true)
	send(b, "b-2", "example/BW-2", true)
	send(a, "b-2", "example/BW-2", false) // the answer was lost; the retry goes to the other replica
	send(b, "b-3", "example/BW-3", true)
	send(a, "b-4", "example/BW-4", true)
	for _, ts := range []*testServer{a, b} {
		var cv ComputerView
		json.Unmarshal(a.admin("GET", "/api/v1/computers/"+ag.resp.AgentID, nil, 200), &cv)
		if len(cv.Updates) != 4 {
			t.Fatalf("computer seen through %s: %d update states, want 4: %+v", ts.url, len(cv.Updates), cv.Updates)
		}
	}
	return ag
}

// TestReplicasSeeApprovalChanges: an approval made on one replica changes
// the other replica's check-in answer at once (LISTEN/NOTIFY drops its
// cache), and approvals made on both replicas at the same moment are all
// signed (the advisory lock: one signer at a time, none lost).
func TestReplicasSeeApprovalChanges(t *testing.T) {
	a, b, _ := startReplicas(t)
	tok := a.newToken(TokenRequest{Kind: "enroll", Group: "default", ExpiresIn: "1h"})
	ag := a.enroll(tok, machineA, "")
	code, _, hdr := b.agentDo(ag, ag.client, "GET", "/agent/v1/checkin", nil, nil)
	etag := hdr.Get("ETag")
	if code != 200 || etag == "" {
		t.Fatalf("check-in: %d", code)
	}
	if code, _, _ := b.agentDo(ag, ag.client, "GET", "/agent/v1/checkin", nil, map[string]string{"If-None-Match": etag}); code != http.StatusNotModified {
		t.Fatalf("unchanged check-in: %d", code)
	}
	a.admin("PUT", "/api/v1/groups/default/approvals/example/BW-1", ApprovalRequest{Action: "install"}, 200)
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, _, _ := b.agentDo(ag, ag.client, "GET", "/agent/v1/checkin", nil, map[string]string{"If-None-Match": etag})
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("5 s after an approval on replica A, replica B still answers %d to the old ETag", code)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Both replicas approve at once, in different groups and the same one.
	a.admin("POST", "/api/v1/groups", GroupRequest{Name: "web"}, http.StatusCreated)
	var wg sync.WaitGroup
	for i, ts := range []*testServer{a, b, a, b} {
		wg.Go(func() {
			group := []string{"default", "web"}[i%2]
			id := fmt.Sprintf("BW-%d", i+1)
			code, body, _ := ts.do(ts.client, "PUT", "/api/v1/groups/"+group+"/approvals/example/"+id, a.first.AdminToken, ApprovalRequest{Action: "install"})
			if code != 200 {
				t.Errorf("approve %s in %s through %s: %d %s", id, group, ts.url, code, body)
			}
		})
	}
	wg.Wait()
	for group, ids := range map[string][]string{"default": {"BW-1", "BW-3"}, "web": {"BW-2", "BW-4"}} {
		doc := siteApprovals(t, b, group)
		for _, id := range ids {
			if doc.Find("example", id) == nil {
				t.Errorf("approval of %s in %s lost from the signed site repository: %+v", id, group, doc.Updates)
			}
		}
	}
}

// TestReplicasBootstrapTogether: two replicas started at the same moment on
// a fresh shared data directory and a fresh database make one site: one
// first start (one admin token, one site CA, one site root), the other
// replica opening what the first made.
func TestReplicasBootstrapTogether(t *testing.T) {
	pg := pgtest.Start(t, pgtest.Options{})
	cfg := Config{DataDir: filepath.Join(t.TempDir(), "data"), Database: pg.NewDatabase(t), Listen: "127.0.0.1:0"}
	var srvs [2]*Server
	var firsts [2]*FirstStart
	var errs [2]error
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range srvs {
		wg.Go(func() {
			<-start
			srvs[i], firsts[i], errs[i] = Open(context.Background(), cfg)
		})
	}
	close(start)
	wg.Wait()
	for i, s := range srvs {
		if errs[i] != nil {
			t.Fatalf("replica %d: %v", i, errs[i])
		}
		t.Cleanup(func() { s.Close() })
	}
	if (firsts[0] == nil) == (firsts[1] == nil) {
		t.Fatalf("first starts: %v and %v; want exactly one", firsts[0] != nil, firsts[1] != nil)
	}
	if a, b := srvs[0].CAFingerprint(), srvs[1].CAFingerprint(); a != b {
		t.Fatalf("site CAs %s and %s: two sites", a, b)
	}
	ra, err := srvs[0].SiteRootFingerprint()
	if err != nil {
		t.Fatal(err)
	}
	if rb, _ := srvs[1].SiteRootFingerprint(); ra != rb {
		t.Fatalf("site roots %s and %s: two sites", ra, rb)
	}
	toks, err := srvs[0].st.ListTokens(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(toks) != 2 {
		t.Fatalf("%d tokens after the first start, want one admin and one enrollment token: %+v", len(toks), toks)
	}
}
