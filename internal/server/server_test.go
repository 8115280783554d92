package server

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/approval"
	"github.com/bulwarkhq/bulwark/internal/fetch"
	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/store/postgres/pgtest"
	"github.com/bulwarkhq/bulwark/internal/tuf"
	"github.com/bulwarkhq/bulwark/internal/wire"
)

func TestFirstStartAndRestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	ts := startServer(t, Config{DataDir: dir})
	if ts.first == nil || !strings.HasPrefix(ts.first.AdminToken, apiTokenPrefix) || !strings.HasPrefix(ts.first.EnrollToken, enrollTokenPrefix) {
		t.Fatalf("first start = %+v", ts.first)
	}
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("data dir mode %v (%v), want 0700", fi.Mode().Perm(), err)
	}
	pin := ts.CAFingerprint()
	// The tokens are stored hashed: the secret appears nowhere on disk.
	for _, secret := range []string{ts.first.AdminToken, ts.first.EnrollToken} {
		filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
			if err == nil && info.Mode().IsRegular() {
				if b, _ := os.ReadFile(p); bytes.Contains(b, []byte(secret)) {
					t.Errorf("token secret stored in %s", p)
				}
			}
			return nil
		})
	}
	code, body, _ := ts.do(ts.client, "GET", "/", "", nil)
	if code != 200 || !bytes.Contains(body, []byte("Bulwark update server")) || !bytes.Contains(body, []byte(pin)) {
		t.Fatalf("status page: %d %s", code, body)
	}
	if code, body, _ := ts.do(ts.client, "GET", "/healthz", "", nil); code != 200 || string(body) != "ok\n" {
		t.Fatalf("healthz: %d %q", code, body)
	}
	ts.enroll(ts.first.EnrollToken, machineA, "")
	ts.refreshFleet(t.Context()) // counts are computed every 15 s, off the request path
	if code, body, _ := ts.do(ts.client, "GET", "/metrics", "", nil); code != 200 || !bytes.Contains(body, []byte("bulwark_http_requests_total")) ||
		!bytes.Contains(body, []byte(`bulwark_computers{status="active"} 1`)) || !bytes.Contains(body, []byte("bulwark_enrollments_total 1")) {
		t.Fatalf("metrics: %d\n%s", code, body)
	}
	ts.stop()

	ts2 := startServer(t, Config{DataDir: dir})
	if ts2.first != nil {
		t.Fatal("second start made new first-start tokens")
	}
	if ts2.CAFingerprint() != pin {
		t.Fatal("CA changed on restart")
	}
	ts2.first = ts.first
	ts2.admin("GET", "/api/v1/groups", nil, 200) // the admin token survives a restart
}

func TestDataDirFormatMismatch(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	os.MkdirAll(dir, 0o700)
	os.WriteFile(filepath.Join(dir, formatFile), []byte("bulwark-data 99\n"), 0o600)
	_, _, err := Open(context.Background(), Config{DataDir: dir})
	if err == nil || !strings.Contains(err.Error(), "upgrade") {
		t.Fatalf("Open with a newer format: %v", err)
	}
}

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"vendor name with slash", Config{Vendors: []HostedVendor{{Name: "a/b", Dir: "x"}}}, "vendor repository name"},
		{"vendor without dir", Config{Vendors: []HostedVendor{{Name: "a"}}}, "directory"},
		{"plain http upstream", Config{Upstream: &Upstream{URL: "http://x:1", CAFingerprint: "sha256:" + strings.Repeat("a", 64), Vendors: []UpstreamVendor{{Name: "v", RootFingerprint: "sha256:" + strings.Repeat("a", 64)}}}}, "https"},
		{"bad ca pin", Config{Upstream: &Upstream{URL: "https://x:1", CAFingerprint: "abc"}}, "ca_fingerprint"},
		{"no vendors", Config{Upstream: &Upstream{URL: "https://x:1", CAFingerprint: "sha256:" + strings.Repeat("a", 64)}}, "at least one"},
		{"bad root pin", Config{Upstream: &Upstream{URL: "https://x:1", CAFingerprint: "sha256:" + strings.Repeat("a", 64), Vendors: []UpstreamVendor{{Name: "v", RootFingerprint: "x"}}}}, "root_fingerprint"},
		{"bad public url", Config{PublicURL: "ftp://x"}, "public url"},
		{"database not postgres", Config{Database: "mysql://u:secret@db/x"}, "postgres://user@host:port/name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.DataDir = filepath.Join(t.TempDir(), "d")
			_, _, err := Open(context.Background(), tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func get(t testing.TB, c *http.Client, url string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestRepositoryServing(t *testing.T) {
	v := newVendorRepo(t, "example")
	payload := strings.Repeat("payload-bytes ", 5000)
	v.publish(t, "BW-1", "critical", map[string]string{"p.deb": payload})
	ts := startServer(t, Config{Vendors: []HostedVendor{{Name: "example", Dir: v.dir}}})
	// A file outside the repository that a symlink inside points to.
	secret := filepath.Join(t.TempDir(), "secret.json")
	os.WriteFile(secret, []byte(`{"secret":true}`), 0o644)
	os.Symlink(secret, filepath.Join(v.dir, "metadata", "evil.json"))
	os.Symlink("../keys", filepath.Join(v.dir, "targets", "k"))

	base := ts.url + "/repos/example"
	resp, body := get(t, ts.client, base+"/metadata/timestamp.json", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "no-cache" || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("timestamp.json: %d %v", resp.StatusCode, resp.Header)
	}
	etag := resp.Header.Get("ETag")
	if !bytes.Equal(body, mustRead(t, filepath.Join(v.dir, "metadata", "timestamp.json"))) {
		t.Fatal("timestamp.json differs from the file")
	}
	resp, _ = get(t, ts.client, base+"/metadata/timestamp.json", map[string]string{"If-None-Match": etag})
	if resp.StatusCode != http.StatusNotModified {
		t.Fatalf("If-None-Match: %d, want 304", resp.StatusCode)
	}
	resp, _ = get(t, ts.client, base+"/metadata/1.root.json", nil)
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Cache-Control"), "immutable") {
		t.Fatalf("1.root.json: %d %v", resp.StatusCode, resp.Header)
	}
	// gzip when asked (Go's transport would decompress silently; ask by hand).
	resp, body = get(t, ts.client, base+"/metadata/1.root.json", map[string]string{"Accept-Encoding": "gzip"})
	if resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("no gzip: %v", resp.Header)
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	unz, _ := io.ReadAll(zr)
	if !bytes.Equal(unz, mustRead(t, filepath.Join(v.dir, "metadata", "1.root.json"))) {
		t.Fatal("gzip body differs from the file")
	}
	// The payload: found through the vendor's verified metadata, served with
	// Range and as an immutable, typed file.
	var tp string
	filepath.Walk(filepath.Join(v.dir, "targets", "updates", "BW-1"), func(p string, info os.FileInfo, err error) error {
		if err == nil && strings.HasSuffix(p, ".p.deb") {
			tp, _ = filepath.Rel(filepath.Join(v.dir, "targets"), p)
		}
		return nil
	})
	if tp == "" {
		t.Fatal("payload not found in the vendor repository")
	}
	resp, body = get(t, ts.client, base+"/targets/"+tp, map[string]string{"Range": "bytes=8-15"})
	if resp.StatusCode != http.StatusPartialContent || string(body) != payload[8:16] {
		t.Fatalf("Range: %d %q", resp.StatusCode, body)
	}
	if resp.Header.Get("Content-Type") != "application/vnd.debian.binary-package" || !strings.Contains(resp.Header.Get("Cache-Control"), "immutable") {
		t.Fatalf("payload headers: %v", resp.Header)
	}
	resp, body = get(t, ts.client, base+"/targets/"+tp, nil)
	if resp.StatusCode != 200 || string(body) != payload {
		t.Fatalf("payload: %d, %d bytes", resp.StatusCode, len(body))
	}

	// Path attacks: each must be refused, never serve the keys or anything
	// outside metadata/ and targets/.
	attacks := []struct{ name, path string }{
		{"keys directory", "/repos/example/keys/root-1.key"},
		{"dot-dot in metadata", "/repos/example/metadata/../keys/root-1.key"},
		{"encoded dot-dot", "/repos/example/metadata/%2e%2e/keys/root-1.key"},
		{"encoded slash and dot-dot", "/repos/example/metadata/..%2fkeys%2froot-1.key"},
		{"encoded dot-dot in targets", "/repos/example/targets/%2e%2e/keys/targets.key"},
		{"double-encoded dot-dot", "/repos/example/targets/%252e%252e/keys/targets.key"},
		{"backslash", "/repos/example/targets/..%5ckeys%5ctargets.key"},
		{"NUL byte", "/repos/example/metadata/timestamp.json%00.txt"},
		{"absolute path in targets", "/repos/example/targets//etc/passwd"},
		{"symlink out of the repository", "/repos/example/metadata/evil.json"},
		{"symlink to keys", "/repos/example/targets/k/targets.key"},
		{"hidden temp file", "/repos/example/metadata/.lock"},
		{"repository name escape", "/repos/..%2fsite/metadata/root.json"},
		{"site keys", "/site/keys/targets.key"},
		{"site dot-dot", "/site/targets/%2e%2e/keys/targets.key"},
		{"unknown repository", "/repos/nope/metadata/root.json"},
		{"subdirectory in metadata", "/repos/example/metadata/x/timestamp.json"},
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			req, err := http.NewRequest("GET", ts.url+"/", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.URL.Opaque = a.path // sent exactly as written, no client-side cleaning
			resp, err := ts.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 || bytes.Contains(b, []byte("PRIVATE KEY")) || bytes.Contains(b, []byte("secret")) {
				t.Fatalf("%s: %d %q", a.path, resp.StatusCode, b)
			}
		})
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

// siteApprovals reads a group's approvals the way an agent does: over
// HTTPS, verified from the site root.
func siteApprovals(t testing.TB, ts *testServer, group string) *approval.Document {
	t.Helper()
	root, err := ts.site.Root()
	if err != nil {
		t.Fatal(err)
	}
	c, err := tuf.NewClient(tuf.ClientConfig{TrustedRoot: root, MetadataURL: ts.url + "/site/metadata", TargetsURL: ts.url + "/site/targets",
		CacheDir: t.TempDir(), Fetcher: fetch.New(fetch.Options{HTTPClient: ts.client})})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	doc, _, err := c.Approvals(context.Background(), group)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// vendorTargets reads an update's targets from the vendor repository
// directly, verified from the vendor root.
func vendorTargets(t testing.TB, root []byte, dir, id string) map[string]approval.Target {
	t.Helper()
	c, err := tuf.NewClient(tuf.ClientConfig{TrustedRoot: root, MetadataURL: "file://" + filepath.Join(dir, "metadata"),
		TargetsURL: "file://" + filepath.Join(dir, "targets"), CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	info, err := c.Update(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]approval.Target{tuf.UpdatePath(id): {Path: tuf.UpdatePath(id), Length: info.Target.Length, SHA256: hex.EncodeToString(info.Target.Hashes["sha256"])}}
	for _, p := range info.Update.Payloads {
		tf, err := c.Payload(ctx, info, p.File)
		if err != nil {
			t.Fatal(err)
		}
		out[tuf.PayloadPath(id, p.File)] = approval.Target{Path: tuf.PayloadPath(id, p.File), Length: tf.Length, SHA256: hex.EncodeToString(tf.Hashes["sha256"])}
	}
	return out
}

func checkApproved(t testing.TB, doc *approval.Document, vendor, id, action string, want map[string]approval.Target) {
	t.Helper()
	a := doc.Find(vendor, id)
	if a == nil || a.Action != action {
		t.Fatalf("approvals of %s: %s/%s = %+v, want %s", doc.Group, vendor, id, a, action)
	}
	if len(a.Targets) != len(want) {
		t.Fatalf("approval carries %d targets, vendor has %d", len(a.Targets), len(want))
	}
	for _, tg := range a.Targets {
		if want[tg.Path] != tg {
			t.Fatalf("target %s: approval %+v, vendor %+v", tg.Path, tg, want[tg.Path])
		}
	}
}

func TestGroupsAndApprovals(t *testing.T) {
	v := newVendorRepo(t, "example")
	v.publish(t, "BW-1", "critical", map[string]string{"a.deb": "aaaa", "b.deb": "bbbbbbbb"})
	v.publish(t, "BW-2", "low", map[string]string{"c.deb": "cc"})
	ts := startServer(t, Config{Vendors: []HostedVendor{{Name: "example", Dir: v.dir}}})
	if _, err := ts.SyncAll(context.Background(), "", "manual"); err != nil {
		t.Fatal(err)
	}
	ts.admin("POST", "/api/v1/groups", GroupRequest{Name: "web"}, http.StatusCreated)
	ts.admin("POST", "/api/v1/groups", GroupRequest{Name: "web"}, http.StatusConflict)
	webTok := ts.newToken(TokenRequest{Kind: "enroll", Group: "web"})
	agent := ts.enroll(webTok, machineA, "")
	_, before, hdr := ts.agentDo(agent, agent.client, "GET", "/agent/v1/checkin", nil, nil)
	dl := time.Now().Add(72 * time.Hour).UTC().Truncate(time.Second)
	ts.admin("PUT", "/api/v1/groups/web/approvals/example/BW-1", ApprovalRequest{Action: "install", Deadline: &dl, Rollout: 25}, 200)
	ts.admin("PUT", "/api/v1/groups/web/approvals/example/BW-2", ApprovalRequest{Action: "decline"}, 200)

	doc := siteApprovals(t, ts, "web")
	checkApproved(t, doc, "example", "BW-1", "install", vendorTargets(t, v.root(t), v.dir, "BW-1"))
	if a := doc.Find("example", "BW-1"); a.Rollout != 25 || a.Deadline == nil || !a.Deadline.Equal(dl) {
		t.Fatalf("approval = %+v", a)
	}
	if a := doc.Find("example", "BW-2"); a == nil || a.Action != "decline" {
		t.Fatalf("decline = %+v", a)
	}
	// The group's agents see the change at their next check-in.
	code, after, _ := ts.agentDo(agent, agent.client, "GET", "/agent/v1/checkin", nil, map[string]string{"If-None-Match": hdr.Get("ETag")})
	if code != 200 || bytes.Equal(before, after) {
		t.Fatalf("check-in after approving: %d, body unchanged=%v", code, bytes.Equal(before, after))
	}
	// Change to uninstall, then remove.
	ts.admin("PUT", "/api/v1/groups/web/approvals/example/BW-1", ApprovalRequest{Action: "uninstall"}, 200)
	checkApproved(t, siteApprovals(t, ts, "web"), "example", "BW-1", "uninstall", vendorTargets(t, v.root(t), v.dir, "BW-1"))
	ts.admin("DELETE", "/api/v1/groups/web/approvals/example/BW-2", nil, http.StatusNoContent)
	if siteApprovals(t, ts, "web").Find("example", "BW-2") != nil {
		t.Fatal("removed approval still signed")
	}
	// Updates list with filters.
	var ul struct{ Updates []UpdateView }
	json.Unmarshal(ts.admin("GET", "/api/v1/updates?severity=critical", nil, 200), &ul)
	if len(ul.Updates) != 1 || ul.Updates[0].ID != "BW-1" {
		t.Fatalf("updates?severity=critical = %+v", ul.Updates)
	}
	// Refusals.
	ts.admin("PUT", "/api/v1/groups/web/approvals/example/BW-404", ApprovalRequest{Action: "install"}, http.StatusNotFound)
	ts.admin("PUT", "/api/v1/groups/web/approvals/nope/BW-1", ApprovalRequest{Action: "install"}, http.StatusNotFound)
	ts.admin("PUT", "/api/v1/groups/nope/approvals/example/BW-1", ApprovalRequest{Action: "install"}, http.StatusNotFound)
	ts.admin("PUT", "/api/v1/groups/web/approvals/example/BW-1", ApprovalRequest{Action: "install", Rollout: 101}, http.StatusBadRequest)
	ts.admin("PUT", "/api/v1/groups/web/approvals/example/BW-1", ApprovalRequest{Action: "reboot"}, http.StatusBadRequest)

	// A tampered local copy of the vendor repository is refused: approvals
	// never carry hashes that the vendor's signed metadata does not.
	tp := filepath.Join(v.dir, "metadata", "timestamp.json")
	orig := mustRead(t, tp)
	os.WriteFile(tp, bytes.Replace(orig, []byte(`"version"`), []byte(`"version" `), 1), 0o644)
	var js map[string]any
	json.Unmarshal(orig, &js)
	js["signed"].(map[string]any)["version"] = 999
	bad, _ := json.Marshal(js)
	os.WriteFile(tp, bad, 0o644)
	code, body, _ := ts.do(ts.client, "PUT", "/api/v1/groups/web/approvals/example/BW-2", ts.first.AdminToken, ApprovalRequest{Action: "install"})
	if code == 200 {
		t.Fatalf("approval from a tampered vendor copy accepted: %s", body)
	}
	os.WriteFile(tp, orig, 0o644)

	// Deleting a group moves its computers and stops signing its document.
	ts.admin("DELETE", "/api/v1/groups/web", nil, http.StatusNoContent)
	ts.admin("DELETE", "/api/v1/groups/default", nil, http.StatusBadRequest)
	doc, err := ts.site.Approvals(context.Background(), "web")
	if err != nil || len(doc.Updates) != 0 {
		t.Fatalf("deleted group still has approvals: %+v %v", doc, err)
	}
}

func TestAgentEnrollCheckinReport(t *testing.T) { onBothStores(t, testAgentEnrollCheckinReport) }

// onBothStores runs test on a server with SQLite and on one with a real
// PostgreSQL.
func onBothStores(t *testing.T, test func(t *testing.T, cfg Config)) {
	t.Run("sqlite", func(t *testing.T) { test(t, Config{}) })
	t.Run("postgres", func(t *testing.T) {
		pg := pgtest.Start(t, pgtest.Options{})
		test(t, Config{Database: pg.NewDatabase(t)})
	})
}

func testAgentEnrollCheckinReport(t *testing.T, cfg Config) {
	ts := startServer(t, cfg)
	ts.admin("POST", "/api/v1/groups", GroupRequest{Name: "web"}, http.StatusCreated)
	tok := ts.newToken(TokenRequest{Kind: "enroll", Group: "web", MaxUses: 2, ExpiresIn: "1h"})
	a := ts.enroll(tok, machineA, "")
	if a.resp.Group != "web" || !strings.HasPrefix(a.resp.AgentID, "agt-") || len(a.resp.Site.Root) == 0 {
		t.Fatalf("enroll response = %+v", a.resp)
	}
	// Check-in, then the same check-in is a 304.
	code, body, hdr := ts.agentDo(a, a.client, "GET", "/agent/v1/checkin", nil, nil)
	if code != 200 || hdr.Get("ETag") == "" {
		t.Fatalf("checkin: %d %s", code, body)
	}
	var ci wire.CheckinResponse
	json.Unmarshal(body, &ci)
	if ci.Group != "web" || ci.Approvals != "approvals/web.json" {
		t.Fatalf("checkin = %+v", ci)
	}
	code, body, _ = ts.agentDo(a, a.client, "GET", "/agent/v1/checkin", nil, map[string]string{"If-None-Match": hdr.Get("ETag")})
	if code != http.StatusNotModified || len(body) != 0 {
		t.Fatalf("unchanged checkin: %d %q", code, body)
	}
	// Moving the computer changes the answer.
	ts.admin("POST", "/api/v1/groups/default/computers", MoveRequest{Computers: []string{a.resp.AgentID}}, 200)
	code, _, _ = ts.agentDo(a, a.client, "GET", "/agent/v1/checkin", nil, map[string]string{"If-None-Match": hdr.Get("ETag")})
	if code != 200 {
		t.Fatalf("checkin after a move: %d, want 200", code)
	}
	// A report, sent twice, counts once.
	ts.knowUpdates("example", "BW-1", "BW-2")
	now := time.Now().UTC()
	rep := wire.ReportRequest{BatchID: "b-1", Changes: []wire.StateChange{{Key: "example/BW-1", State: "installed", Time: now}, {Key: "example/BW-2", State: "needed", Time: now}},
		Inventory: &wire.Inventory{OS: "debian 12", Packages: []wire.Package{{Name: "libssl3", Version: "3.0.15-1~deb12u1", Arch: "amd64"}}}}
	for i, want := range []bool{true, false} {
		code, body, _ := ts.agentDo(a, a.client, "POST", "/agent/v1/report", rep, nil)
		var r struct{ Applied bool }
		json.Unmarshal(body, &r)
		if code != 200 || r.Applied != want {
			t.Fatalf("report delivery %d: %d %s, want applied=%v", i+1, code, body, want)
		}
	}
	var cv ComputerView
	json.Unmarshal(ts.admin("GET", "/api/v1/computers/"+a.resp.AgentID, nil, 200), &cv)
	if len(cv.Updates) != 2 || cv.Updates[0].State != "installed" {
		t.Fatalf("computer = %+v", cv)
	}
	// The token allowed two enrollments: the third is refused.
	ts.enroll(tok, machineB, "")
	key := a.key
	code, body, _ = ts.do(ts.client, "POST", "/agent/v1/enroll", "", wire.EnrollRequest{Token: tok, CSR: csrFor(t, key),
		Facts: wire.Facts{MachineID: "11112222333344445555666677778888", Hostname: "h", OS: "debian 12", Arch: "amd64"}})
	if code != http.StatusForbidden {
		t.Fatalf("third enrollment with a 2-use token: %d %s", code, body)
	}
}

func TestClientSideTargeting(t *testing.T) {
	ts := startServer(t, Config{})
	ts.admin("POST", "/api/v1/groups", GroupRequest{Name: "db"}, http.StatusCreated)
	fixed := ts.newToken(TokenRequest{Kind: "enroll", Group: "default"})
	free := ts.newToken(TokenRequest{Kind: "enroll", Group: "default", ClientGroup: true})
	if a := ts.enroll(free, machineA, "db"); a.resp.Group != "db" {
		t.Fatalf("client-side targeting put the agent in %q", a.resp.Group)
	}
	key := mustKey(t)
	code, body, _ := ts.do(ts.client, "POST", "/agent/v1/enroll", "", wire.EnrollRequest{Token: fixed, CSR: csrFor(t, key), Group: "db",
		Facts: wire.Facts{MachineID: machineB, Hostname: "h", OS: "debian 12", Arch: "amd64"}})
	if code != http.StatusForbidden {
		t.Fatalf("a server-side token let the agent choose its group: %d %s", code, body)
	}
	code, body, _ = ts.do(ts.client, "POST", "/agent/v1/enroll", "", wire.EnrollRequest{Token: free, CSR: csrFor(t, key), Group: "nope",
		Facts: wire.Facts{MachineID: machineB, Hostname: "h", OS: "debian 12", Arch: "amd64"}})
	if code != http.StatusBadRequest {
		t.Fatalf("enrollment into a missing group: %d %s", code, body)
	}
}

func TestCloneIsFlaggedNotMerged(t *testing.T) {
	ts := startServer(t, Config{})
	a := ts.enroll(ts.first.EnrollToken, machineA, "")
	if code, _, _ := ts.agentDo(a, a.client, "GET", "/agent/v1/checkin", nil, nil); code != 200 {
		t.Fatalf("checkin: %d", code)
	}
	clone := *a
	clone.machineID = machineB // the same key and certificate on another machine
	code, body, _ := ts.agentDo(&clone, clone.client, "GET", "/agent/v1/checkin", nil, nil)
	if code != http.StatusConflict || !bytes.Contains(body, []byte("re-enroll")) {
		t.Fatalf("clone check-in: %d %s", code, body)
	}
	// Now neither machine is served under that identity...
	if code, _, _ := ts.agentDo(a, a.client, "GET", "/agent/v1/checkin", nil, nil); code != http.StatusConflict {
		t.Fatalf("original after clone detected: %d, want 409", code)
	}
	ag, err := ts.st.Agent(context.Background(), a.resp.AgentID)
	if err != nil || ag.Status != store.AgentReenroll || ag.MachineID != machineA {
		t.Fatalf("agent after clone = %+v %v", ag, err)
	}
	// ...and each enrolls again as its own computer.
	tok := ts.newToken(TokenRequest{Kind: "enroll"})
	a1, a2 := ts.enroll(tok, machineA, ""), ts.enroll(tok, machineB, "")
	if a1.resp.AgentID == a2.resp.AgentID {
		t.Fatal("re-enrolled clones share an identity")
	}
	for _, x := range []*testAgent{a1, a2} {
		if code, _, _ := ts.agentDo(x, x.client, "GET", "/agent/v1/checkin", nil, nil); code != 200 {
			t.Fatalf("re-enrolled agent check-in: %d", code)
		}
	}
}

func mustKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestPlainHTTPServesRepositoriesOnly: the optional plain-HTTP listener
// carries repository files (verified by every client) and nothing else.
func TestPlainHTTPServesRepositoriesOnly(t *testing.T) {
	v := newVendorRepo(t, "example")
	ts := startServer(t, Config{Vendors: []HostedVendor{{Name: "example", Dir: v.dir}}})
	h := ts.plainRoutes()
	tests := []struct {
		method, path string
		want         int
	}{
		{"GET", "/repos/example/metadata/timestamp.json", 200},
		{"GET", "/site/metadata/timestamp.json", 200},
		{"GET", "/healthz", 200},
		{"GET", "/api/v1/groups", 404},
		{"POST", "/api/v1/groups", 404},
		{"POST", "/agent/v1/enroll", 404},
		{"GET", "/agent/v1/checkin", 404},
		{"GET", "/metrics", 404},
		{"GET", "/", 404},
	}
	for _, tc := range tests {
		w := httptest.NewRecorder()
		req := httptest.NewRequest(tc.method, tc.path, nil)
		req.Header.Set("Authorization", "Bearer "+ts.first.AdminToken)
		h.ServeHTTP(w, req)
		if w.Code != tc.want {
			t.Errorf("plain HTTP %s %s = %d, want %d", tc.method, tc.path, w.Code, tc.want)
		}
	}
}
