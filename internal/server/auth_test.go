package server

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/pki"
	"github.com/bulwarkhq/bulwark/internal/ratelimit"
	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/wire"
)

// TestAuth is the attack table for the admin API: each row is a request
// that must be refused, with the status it must get.
func TestAuth(t *testing.T) {
	ts := startServer(t, Config{})
	ts.authFailLimit = ratelimit.New(1000, 1000, 10) // every row gets its own answer; see TestAttackAdminTokenGuessing
	viewer := ts.newToken(TokenRequest{Kind: "api", Role: "viewer"})
	approver := ts.newToken(TokenRequest{Kind: "api", Role: "approver"})
	revoked := ts.newToken(TokenRequest{Kind: "api", Role: "admin", Name: "to revoke"})
	var toks struct{ Tokens []store.Token }
	json.Unmarshal(ts.admin("GET", "/api/v1/tokens?kind=api", nil, 200), &toks)
	for _, tok := range toks.Tokens {
		if tok.Name == "to revoke" { // by name: tokens made in one millisecond list in id order
			ts.admin("DELETE", "/api/v1/tokens/"+tok.ID, nil, http.StatusNoContent)
		}
	}
	// An expired token: made with a short life, checked after it.
	expired := ts.newToken(TokenRequest{Kind: "api", Role: "admin", ExpiresIn: "1ms"})
	time.Sleep(5 * time.Millisecond)

	tests := []struct {
		name, method, path, token string
		body                      any
		want                      int
	}{
		{"no token", "GET", "/api/v1/groups", "", nil, 401},
		{"no token on a write", "POST", "/api/v1/groups", "", GroupRequest{Name: "x"}, 401},
		{"basic auth instead of bearer", "GET", "/api/v1/groups", "", nil, 401},
		{"unknown token", "GET", "/api/v1/groups", apiTokenPrefix + strings.Repeat("a", 52), nil, 401},
		{"enrollment token as API token", "GET", "/api/v1/groups", ts.first.EnrollToken, nil, 401},
		{"oversized token", "GET", "/api/v1/groups", apiTokenPrefix + strings.Repeat("a", 5000), nil, 401},
		{"revoked token", "GET", "/api/v1/groups", revoked, nil, 401},
		{"expired token", "GET", "/api/v1/groups", expired, nil, 401},
		{"viewer creates a group", "POST", "/api/v1/groups", viewer, GroupRequest{Name: "x"}, 403},
		{"viewer approves", "PUT", "/api/v1/groups/default/approvals/v/BW-1", viewer, ApprovalRequest{Action: "install"}, 403},
		{"viewer lists tokens", "GET", "/api/v1/tokens", viewer, nil, 403},
		{"approver creates a token", "POST", "/api/v1/tokens", approver, TokenRequest{Kind: "api", Role: "admin"}, 403},
		{"approver removes a computer", "DELETE", "/api/v1/computers/agt-x", approver, nil, 403},
		{"approver deletes a group", "DELETE", "/api/v1/groups/default", approver, nil, 403},
		{"approver triggers sync", "POST", "/api/v1/sync", approver, nil, 403},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var code int
			if tc.name == "basic auth instead of bearer" {
				req, _ := http.NewRequest(tc.method, ts.url+tc.path, nil)
				req.SetBasicAuth("admin", ts.first.AdminToken)
				resp, err := ts.client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				code = resp.StatusCode
			} else {
				code, _, _ = ts.do(ts.client, tc.method, tc.path, tc.token, tc.body)
			}
			if code != tc.want {
				t.Fatalf("%s %s = %d, want %d", tc.method, tc.path, code, tc.want)
			}
		})
	}
	// The roles that are allowed do get through.
	if code, _, _ := ts.do(ts.client, "GET", "/api/v1/groups", viewer, nil); code != 200 {
		t.Fatalf("viewer read: %d", code)
	}
}

// TestAgentAuth is the attack table for the agent API.
func TestAgentAuth(t *testing.T) {
	ts := startServer(t, Config{})
	a := ts.enroll(ts.first.EnrollToken, machineA, "")
	b := ts.enroll(ts.first.EnrollToken, machineB, "")
	revoked := ts.enroll(ts.first.EnrollToken, "aaaabbbbccccddddeeeeffff00001111", "")
	ts.admin("POST", "/api/v1/computers/"+revoked.resp.AgentID+"/revoke", nil, http.StatusNoContent)
	removed := ts.enroll(ts.first.EnrollToken, "aaaabbbbccccddddeeeeffff00002222", "")
	ts.admin("DELETE", "/api/v1/computers/"+removed.resp.AgentID, nil, http.StatusNoContent)
	// Re-enrolling the same machine with its certificate retires it.
	old := ts.enroll(ts.first.EnrollToken, "aaaabbbbccccddddeeeeffff00003333", "")
	ts.enrollFrom(old.client, ts.first.EnrollToken, "aaaabbbbccccddddeeeeffff00003333", "")

	// A certificate for a's agent id, from another CA.
	other, err := pki.NewCA("attacker", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := pki.ParseCSR([]byte(csrFor(t, key)))
	certPEM, _, _ := other.SignAgent(csr, a.resp.AgentID, time.Now())
	kder, _ := x509.MarshalECPrivateKey(key)
	forged, _ := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
	forgedClient := pinnedClient(t, ts.CAFingerprint(), &forged)

	// The server's own certificate (site CA, but for server use) as a client
	// certificate.
	serverCert := ts.tls.Server
	serverCertClient := pinnedClient(t, ts.CAFingerprint(), &serverCert)

	report := func(agentID string) wire.ReportRequest {
		return wire.ReportRequest{AgentID: agentID, BatchID: "b1", Changes: []wire.StateChange{{Key: "v/BW-1", State: "installed", Time: time.Now()}}}
	}
	tests := []struct {
		name   string
		agent  *testAgent
		client *http.Client
		method string
		path   string
		body   any
		want   int // 0 = the TLS handshake itself must fail
	}{
		{"no client certificate", a, ts.client, "GET", "/agent/v1/checkin", nil, 401},
		{"client certificate from another CA", a, forgedClient, "GET", "/agent/v1/checkin", nil, 0},
		{"server certificate as client certificate", a, serverCertClient, "GET", "/agent/v1/checkin", nil, 0},
		{"revoked agent checks in", revoked, revoked.client, "GET", "/agent/v1/checkin", nil, 403},
		{"revoked agent reports", revoked, revoked.client, "POST", "/agent/v1/report", report(""), 403},
		{"removed agent", removed, removed.client, "GET", "/agent/v1/checkin", nil, 403},
		{"revoked agent lists vendors", revoked, revoked.client, "GET", "/agent/v1/vendors", nil, 403},
		{"vendors without client certificate", a, ts.client, "GET", "/agent/v1/vendors", nil, 401},
		{"certificate replaced by re-enrollment", old, old.client, "GET", "/agent/v1/checkin", nil, 403},
		{"one agent posts for another", a, a.client, "POST", "/agent/v1/report", report(b.resp.AgentID), 403},
		{"report without client certificate", a, ts.client, "POST", "/agent/v1/report", report(""), 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body, _ := ts.agentDo(tc.agent, tc.client, tc.method, tc.path, tc.body, nil)
			if code != tc.want {
				t.Fatalf("%s %s = %d %s, want %d", tc.method, tc.path, code, body, tc.want)
			}
		})
	}
	// b's own report still works, and a's state was not touched by a.
	ts.knowUpdates("v", "BW-1")
	if code, body, _ := ts.agentDo(b, b.client, "POST", "/agent/v1/report", report(b.resp.AgentID), nil); code != 200 {
		t.Fatalf("b's own report: %d %s", code, body)
	}
	st, _ := ts.st.AgentStates(t.Context(), a.resp.AgentID)
	if len(st) != 0 {
		t.Fatalf("a's refused report left states %+v", st)
	}
}

// TestBadInput: malformed, oversized and unknown-field bodies are refused
// with a message naming the problem, and change nothing.
func TestBadInput(t *testing.T) {
	ts := startServer(t, Config{})
	a := ts.enroll(ts.first.EnrollToken, machineA, "")
	big := `{"name":"` + strings.Repeat("x", maxAdminBody) + `"}`
	admin := []struct {
		name, method, path string
		body               string
		want               int
		msg                string
	}{
		{"malformed JSON", "POST", "/api/v1/groups", `{"name":`, 400, "request body"},
		{"unknown field", "POST", "/api/v1/groups", `{"name":"x","admin":true}`, 400, "unknown field"},
		{"two values", "POST", "/api/v1/groups", `{"name":"x"}{"name":"y"}`, 400, "data after"},
		{"oversized body", "POST", "/api/v1/groups", big, 413, "limit"},
		{"array instead of object", "POST", "/api/v1/groups", `["x"]`, 400, "request body"},
		{"bad group name", "POST", "/api/v1/groups", `{"name":"../etc"}`, 400, "group"},
		{"empty group name", "POST", "/api/v1/groups", `{"name":""}`, 400, "group"},
		{"bad token kind", "POST", "/api/v1/tokens", `{"kind":"root"}`, 400, "kind"},
		{"bad role", "POST", "/api/v1/tokens", `{"kind":"api","role":"god"}`, 400, "role"},
		{"bad expiry", "POST", "/api/v1/tokens", `{"kind":"enroll","expires_in":"-1h"}`, 400, "expires_in"},
		{"negative max uses", "POST", "/api/v1/tokens", `{"kind":"enroll","max_uses":-1}`, 400, "max_uses"},
		{"move no computers", "POST", "/api/v1/groups/default/computers", `{"computers":[]}`, 400, "computers"},
		{"sync history limit", "GET", "/api/v1/sync?limit=abc", "", 400, "limit"},
	}
	for _, tc := range admin {
		t.Run(tc.name, func(t *testing.T) {
			var body any
			if tc.body != "" {
				body = tc.body
			}
			code, b, _ := ts.do(ts.client, tc.method, tc.path, ts.first.AdminToken, body)
			if code != tc.want || !bytes.Contains(b, []byte(tc.msg)) {
				t.Fatalf("%d %s, want %d with %q", code, b, tc.want, tc.msg)
			}
		})
	}
	now := time.Now().UTC()
	reports := []struct {
		name string
		body any
		want int
	}{
		{"bad batch id", wire.ReportRequest{BatchID: "../x"}, 400},
		{"unknown state", wire.ReportRequest{BatchID: "b", Changes: []wire.StateChange{{Key: "v/u", State: "pwned", Time: now}}}, 400},
		{"key without vendor", wire.ReportRequest{BatchID: "b", Changes: []wire.StateChange{{Key: "u", State: "needed", Time: now}}}, 400},
		{"change from the future", wire.ReportRequest{BatchID: "b", Changes: []wire.StateChange{{Key: "v/u", State: "needed", Time: now.Add(72 * time.Hour)}}}, 400},
		{"reason with newline", wire.ReportRequest{BatchID: "b", Changes: []wire.StateChange{{Key: "v/u", State: "failed", Reason: "a\nb", Time: now}}}, 400},
		{"too many changes", wire.ReportRequest{BatchID: "b", Changes: make([]wire.StateChange, maxReportChanges+1)}, 413},
		{"bad lockdown result", wire.ReportRequest{BatchID: "b", Inventory: &wire.Inventory{Lockdown: []wire.LockdownResult{{Rule: "r", Result: "meh"}}}}, 400},
		{"unknown field", map[string]any{"batch_id": "b", "changes": []any{}, "sql": "drop"}, 400},
		{"oversized report", map[string]any{"batch_id": "b", "changes": []any{}, "inventory": map[string]any{"os": strings.Repeat("x", maxReportBody)}}, 413},
	}
	for _, tc := range reports {
		t.Run("report "+tc.name, func(t *testing.T) {
			code, b, _ := ts.agentDo(a, a.client, "POST", "/agent/v1/report", tc.body, nil)
			if code != tc.want {
				t.Fatalf("%d %s, want %d", code, b, tc.want)
			}
		})
	}
	st, _ := ts.st.AgentStates(t.Context(), a.resp.AgentID)
	if len(st) != 0 {
		t.Fatalf("refused reports left states %+v", st)
	}
	enrolls := []struct {
		name string
		req  wire.EnrollRequest
		want int
	}{
		{"no token", wire.EnrollRequest{CSR: csrFor(t, mustKey(t)), Facts: wire.Facts{MachineID: machineB, Hostname: "h", OS: "debian", Arch: "amd64"}}, 401},
		{"API token", wire.EnrollRequest{Token: ts.first.AdminToken, CSR: csrFor(t, mustKey(t)), Facts: wire.Facts{MachineID: machineB, Hostname: "h", OS: "debian", Arch: "amd64"}}, 401},
		{"garbage CSR", wire.EnrollRequest{Token: ts.first.EnrollToken, CSR: "nope", Facts: wire.Facts{MachineID: machineB, Hostname: "h", OS: "debian", Arch: "amd64"}}, 400},
		{"bad machine id", wire.EnrollRequest{Token: ts.first.EnrollToken, CSR: csrFor(t, mustKey(t)), Facts: wire.Facts{MachineID: "x", Hostname: "h", OS: "debian", Arch: "amd64"}}, 400},
		{"hostname injection", wire.EnrollRequest{Token: ts.first.EnrollToken, CSR: csrFor(t, mustKey(t)), Facts: wire.Facts{MachineID: machineB, Hostname: "h\n<script>", OS: "debian", Arch: "amd64"}}, 400},
		{"bad arch", wire.EnrollRequest{Token: ts.first.EnrollToken, CSR: csrFor(t, mustKey(t)), Facts: wire.Facts{MachineID: machineB, Hostname: "h", OS: "debian", Arch: "AMD 64!"}}, 400},
	}
	for _, tc := range enrolls {
		t.Run("enroll "+tc.name, func(t *testing.T) {
			code, b, _ := ts.do(ts.client, "POST", "/agent/v1/enroll", "", tc.req)
			if code != tc.want {
				t.Fatalf("%d %s, want %d", code, b, tc.want)
			}
		})
	}
	as, _ := ts.st.ListAgents(t.Context(), "")
	if len(as) != 1 {
		t.Fatalf("refused enrollments created agents: %d", len(as))
	}
}

func FuzzEnrollRequest(f *testing.F) {
	f.Add([]byte(`{"token":"bwe_x","csr":"","facts":{"machine_id":"0123456789abcdef","hostname":"h","os":"debian 12","arch":"amd64"}}`))
	f.Add([]byte(`{"facts":{}}`))
	f.Add([]byte(`{"token":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var req wire.EnrollRequest
		if decodeJSON(data, &req) != nil {
			return
		}
		if validateFacts(&req.Facts) == nil && (len(req.Facts.Hostname) > 253 || strings.ContainsAny(req.Facts.OS, "\n\x00")) {
			t.Fatalf("accepted facts %+v", req.Facts)
		}
		_, _ = pki.ParseCSR([]byte(req.CSR))
	})
}

func FuzzReportRequest(f *testing.F) {
	f.Add([]byte(`{"batch_id":"b1","changes":[{"key":"v/BW-1","state":"installed","time":"2026-11-22T03:00:00Z"}],"inventory":{"os":"debian","packages":[{"name":"a","version":"1"}]}}`))
	f.Add([]byte(`{"batch_id":"","changes":null}`))
	f.Add([]byte(`{"changes":[{"key":"/","state":"","time":"0001-01-01T00:00:00Z"}]}`))
	now := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		var req wire.ReportRequest
		if decodeJSON(data, &req) != nil {
			return
		}
		if validateReport(&req, now) != nil {
			return
		}
		rep, err := reportToStore(&req, "agt-x", now)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range rep.Changes {
			if !agentStates[c.State] || c.Vendor == "" || strings.Contains(c.UpdateID, "/") {
				t.Fatalf("validated change %+v", c)
			}
		}
	})
}

func FuzzAdminRequests(f *testing.F) {
	f.Add([]byte(`{"action":"install","rollout":50,"deadline":"2026-12-01T00:00:00Z"}`))
	f.Add([]byte(`{"kind":"enroll","group":"web","max_uses":3,"expires_in":"24h"}`))
	f.Add([]byte(`{"name":"web"}`))
	f.Add([]byte(`{"computers":["agt-1"]}`))
	now := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		var ar ApprovalRequest
		if decodeJSON(data, &ar) == nil && ar.validate(now) == nil {
			if ar.Rollout < 1 || ar.Rollout > 100 || (ar.Action != "install" && ar.Action != "uninstall" && ar.Action != "decline") {
				t.Fatalf("accepted approval %+v", ar)
			}
		}
		var tr TokenRequest
		_ = decodeJSON(data, &tr)
		var gr GroupRequest
		if decodeJSON(data, &gr) == nil && checkName("group", gr.Name) == nil && strings.ContainsAny(gr.Name, "/\\.") && strings.HasPrefix(gr.Name, ".") {
			t.Fatalf("accepted group name %q", gr.Name)
		}
		var mr MoveRequest
		_ = decodeJSON(data, &mr)
		var sr SyncRequest
		_ = decodeJSON(data, &sr)
	})
}

func FuzzRepoPath(f *testing.F) {
	for _, s := range []string{"timestamp.json", "updates/BW-1/abc.p.deb", "../keys/root-1.key", "a//b", ".tmp-x", "x.partial", "a/./b", "a\\b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		got, err := cleanRepoPath(p)
		if err != nil {
			return
		}
		for _, c := range strings.Split(got, "/") {
			if c == ".." || c == "." || c == "" || strings.HasPrefix(c, ".") || strings.ContainsAny(c, "\\\x00") {
				t.Fatalf("cleanRepoPath(%q) = %q", p, got)
			}
		}
	})
}

// TestAttackEnrollTokenGuessing: guessing enrollment tokens from one
// address prefix is throttled: after the burst of failures every attempt is
// answered 429 without the token being looked at, even a valid one (or the
// answer would tell which guess was right); another address of the same
// IPv6 /64 is the same client; another client is not affected.
func TestAttackEnrollTokenGuessing(t *testing.T) {
	ts := startServer(t, Config{EnrollLimits: EnrollLimits{FailRate: 1e-9, FailBurst: 3}})
	valid := ts.newToken(TokenRequest{Kind: "enroll"})
	req := func(token string) wire.EnrollRequest {
		return wire.EnrollRequest{Token: token, CSR: csrFor(t, mustKey(t)),
			Facts: wire.Facts{MachineID: machineA, Hostname: "h", OS: "debian 12", Arch: "amd64"}}
	}
	var codes []int
	for i := range 5 {
		code, _, hdr := ts.do(ts.client, "POST", "/agent/v1/enroll", "", req(enrollTokenPrefix+fmt.Sprintf("%052d", i)))
		codes = append(codes, code)
		if code == http.StatusTooManyRequests && hdr.Get("Retry-After") == "" {
			t.Fatal("429 without Retry-After")
		}
	}
	if fmt.Sprint(codes) != "[401 401 401 429 429]" {
		t.Fatalf("codes = %v, want three refusals then 429s", codes)
	}
	if code, b, _ := ts.do(ts.client, "POST", "/agent/v1/enroll", "", req(valid)); code != http.StatusTooManyRequests {
		t.Fatalf("valid token from the throttled guesser: %d %s, want 429 (no oracle)", code, b)
	}
	now := time.Now()
	for range 3 {
		ts.enrollLimit.fail.Allow(ratelimit.Prefix("[2001:db8::1]:1"), now)
	}
	if blocked, _ := ts.enrollLimit.fail.Blocked(ratelimit.Prefix("[2001:db8::ffff:2]:1"), now); !blocked {
		t.Fatal("another address of the same /64 was not limited")
	}
	// Another client is not affected.
	code, _, _ := ts.do(clientFrom(t, ts, "127.0.0.2"), "POST", "/agent/v1/enroll", "", req(enrollTokenPrefix+strings.Repeat("a", 52)))
	if code != http.StatusUnauthorized {
		t.Fatalf("enrollment from another address: %d, want 401 (not limited)", code)
	}
}

// TestEnrollBehindNAT: a fleet behind one address enrolls with a valid
// token past the failure burst (enrollments that succeed cost the address
// nothing), and a guesser behind the same address is still throttled after
// it. Before the limits were split, every attempt counted against the
// address and the 61st machine was refused.
func TestEnrollBehindNAT(t *testing.T) {
	ts := startServer(t, Config{EnrollLimits: EnrollLimits{FailRate: 1e-9}}) // the default burst, never refilled (a slow machine)
	tok := ts.newToken(TokenRequest{Kind: "enroll"})
	fleet := DefaultEnrollLimits.FailBurst + 20
	for i := range fleet {
		ts.enroll(tok, fmt.Sprintf("%032x", i+1), "")
	}
	var codes []int
	for i := range DefaultEnrollLimits.FailBurst + 1 {
		req := wire.EnrollRequest{Token: enrollTokenPrefix + fmt.Sprintf("%052d", i), CSR: csrFor(t, mustKey(t)),
			Facts: wire.Facts{MachineID: machineA, Hostname: "h", OS: "debian 12", Arch: "amd64"}}
		code, _, _ := ts.do(ts.client, "POST", "/agent/v1/enroll", "", req)
		codes = append(codes, code)
	}
	if got := codes[len(codes)-1]; got != http.StatusTooManyRequests || codes[len(codes)-2] != http.StatusUnauthorized {
		t.Fatalf("after %d enrollments, guesses from the same address were answered %v; want %d refusals then 429", fleet, codes, DefaultEnrollLimits.FailBurst)
	}
}

// TestAttackLeakedEnrollTokenFlood: a valid token enrolls at most its burst
// at once, then 429 with Retry-After; those 429s do not count as failures of
// the address, so the same fleet goes on enrolling with another token.
func TestAttackLeakedEnrollTokenFlood(t *testing.T) {
	ts := startServer(t, Config{EnrollLimits: EnrollLimits{TokenRate: 1e-9, TokenBurst: 3, FailBurst: 2}})
	leaked := ts.newToken(TokenRequest{Kind: "enroll"})
	var codes []int
	for i := range 6 {
		req := wire.EnrollRequest{Token: leaked, CSR: csrFor(t, mustKey(t)),
			Facts: wire.Facts{MachineID: fmt.Sprintf("%032x", i+1), Hostname: "h", OS: "debian 12", Arch: "amd64"}}
		code, _, hdr := ts.do(ts.client, "POST", "/agent/v1/enroll", "", req)
		codes = append(codes, code)
		if code == http.StatusTooManyRequests && hdr.Get("Retry-After") == "" {
			t.Fatal("429 without Retry-After")
		}
	}
	if fmt.Sprint(codes) != "[201 201 201 429 429 429]" {
		t.Fatalf("codes = %v, want the token's burst of 3 then 429s", codes)
	}
	if as, _ := ts.st.ListAgents(t.Context(), ""); len(as) != 3 {
		t.Fatalf("%d agents enrolled with the flooding token, want 3", len(as))
	}
	ts.enroll(ts.newToken(TokenRequest{Kind: "enroll"}), machineB, "")
}

// clientFrom returns a client of ts whose connections come from the
// loopback address ip (127.0.0.0/8 is all loopback on Linux).
func clientFrom(t testing.TB, ts *testServer, ip string) *http.Client {
	t.Helper()
	c := pinnedClient(t, ts.CAFingerprint(), nil)
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
	c.Transport.(*http.Transport).DialContext = d.DialContext
	return c
}

// TestAttackAdminTokenGuessing: requests with bad API tokens are throttled
// per client prefix; after the burst the server answers 429 without
// looking at the token, and other clients are not affected.
func TestAttackAdminTokenGuessing(t *testing.T) {
	ts := startServer(t, Config{})
	viewer := ts.newToken(TokenRequest{Kind: "api", Role: "viewer"})
	var codes []int
	for i := range authFailBurst + 5 {
		code, _, hdr := ts.do(ts.client, "GET", "/api/v1/status", apiTokenPrefix+fmt.Sprintf("%052d", i), nil)
		codes = append(codes, code)
		if code == http.StatusTooManyRequests && hdr.Get("Retry-After") == "" {
			t.Fatal("429 without Retry-After")
		}
	}
	want := strings.Repeat("401 ", authFailBurst) + "429 429 429 429 429"
	if got := strings.Trim(fmt.Sprint(codes), "[]"); got != want {
		t.Fatalf("codes = %s, want %s", got, want)
	}
	// The guesser's address is throttled even with a right token: the
	// guess is refused before it is checked.
	if code, _, _ := ts.do(ts.client, "GET", "/api/v1/status", ts.first.AdminToken, nil); code != http.StatusTooManyRequests {
		t.Fatalf("right token from the throttled address: %d, want 429", code)
	}
	// An admin elsewhere is not.
	if code, _, _ := ts.do(clientFrom(t, ts, "127.0.0.3"), "GET", "/api/v1/status", ts.first.AdminToken, nil); code != http.StatusOK {
		t.Fatalf("admin from another address: %d, want 200", code)
	}
	// A valid token without the role (403) costs nothing.
	c4 := clientFrom(t, ts, "127.0.0.4")
	for range authFailBurst + 2 {
		if code, _, _ := ts.do(c4, "POST", "/api/v1/groups", viewer, map[string]string{"name": "g"}); code != http.StatusForbidden {
			t.Fatalf("viewer creating a group: %d, want 403", code)
		}
	}
}

// TestAttackTLSCBCSuites: a client that offers only CBC (SHA-1 MAC) suites
// in TLS 1.2 gets no handshake; AEAD suites are the only ones offered.
func TestAttackTLSCBCSuites(t *testing.T) {
	ts := startServer(t, Config{})
	addr := strings.TrimPrefix(ts.url, "https://")
	cbc := []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
		tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
		tls.TLS_RSA_WITH_AES_128_CBC_SHA, tls.TLS_RSA_WITH_AES_256_CBC_SHA,
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256,
	}
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12, CipherSuites: cbc})
	if err == nil {
		suite := tls.CipherSuiteName(conn.ConnectionState().CipherSuite)
		conn.Close()
		t.Fatalf("handshake with CBC-only client succeeded: %s", suite)
	}
	t.Logf("refused: %v", err)
	// The same client with AEAD suites, TLS 1.2: accepted.
	conn, err = tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12,
		CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}})
	if err != nil {
		t.Fatalf("AEAD TLS 1.2 handshake: %v", err)
	}
	conn.Close()
}

// TestAttackEnrollTokenOverUse: machines racing to enroll with a token of 3
// uses (their enrollments stored together in group commits) get exactly 3
// identities; the others are refused and nothing of theirs is stored.
func TestAttackEnrollTokenOverUse(t *testing.T) { onBothStores(t, testEnrollTokenOverUse) }

func testEnrollTokenOverUse(t *testing.T, cfg Config) {
	ts := startServer(t, cfg)
	tok := ts.newToken(TokenRequest{Kind: "enroll", MaxUses: 3})
	const n = 12
	// Every enrollment has passed its checks (the token looked usable to
	// all) before any is stored: only the store's count can refuse them.
	var arrived sync.WaitGroup
	arrived.Add(n)
	all := make(chan struct{})
	go func() { arrived.Wait(); close(all) }()
	testHookBeforeEnrollStore = func() {
		arrived.Done()
		select {
		case <-all:
		case <-time.After(20 * time.Second):
		}
	}
	t.Cleanup(func() { testHookBeforeEnrollStore = nil })
	reqs := make([]wire.EnrollRequest, n)
	for i := range reqs {
		reqs[i] = wire.EnrollRequest{Token: tok, CSR: csrFor(t, mustKey(t)),
			Facts: wire.Facts{MachineID: fmt.Sprintf("%032x", i+1), Hostname: "h", OS: "debian 12", Arch: "amd64"}}
	}
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range reqs {
		wg.Go(func() { codes[i], _, _ = ts.do(ts.client, "POST", "/agent/v1/enroll", "", reqs[i]) })
	}
	wg.Wait()
	count := map[int]int{}
	for _, c := range codes {
		count[c]++
	}
	if count[http.StatusCreated] != 3 || count[http.StatusForbidden] != n-3 {
		t.Fatalf("codes %v, want 3 × 201 and %d × 403", count, n-3)
	}
	if as, _ := ts.st.ListAgents(t.Context(), ""); len(as) != 3 {
		t.Fatalf("%d agents stored for a token of 3 uses", len(as))
	}
	got, err := ts.st.TokenByHash(t.Context(), HashToken(tok))
	if err != nil || got.Uses != 3 {
		t.Fatalf("token uses %+v, %v; want 3", got, err)
	}
}
