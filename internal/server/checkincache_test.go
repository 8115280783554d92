package server

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/policy"
	"github.com/bulwarkhq/bulwark/internal/wire"
)

// checkinAgain is a conditional check-in of ag through ts with etag: its
// status, the answer (when 200) and the ETag it carries.
func checkinAgain(t *testing.T, ts *testServer, ag *testAgent, etag string) (int, wire.CheckinResponse, string) {
	t.Helper()
	var hdr map[string]string
	if etag != "" {
		hdr = map[string]string{"If-None-Match": etag}
	}
	code, body, h := ts.agentDo(ag, ag.client, "GET", "/agent/v1/checkin", nil, hdr)
	var ci wire.CheckinResponse
	if code == http.StatusOK {
		if err := json.Unmarshal(body, &ci); err != nil {
			t.Fatalf("check-in answer: %v: %s", err, body)
		}
	}
	return code, ci, h.Get("ETag")
}

// changedAtOnce checks that the check-in answer for ag changed with what
// happened since etag: the very next conditional check-in is a 200 (a
// cached answer left in place would be a 304), and the one after it, with
// the new ETag, a 304 again (the new answer is the one cached).
func changedAtOnce(t *testing.T, ts *testServer, ag *testAgent, etag, what string) (wire.CheckinResponse, string) {
	t.Helper()
	code, ci, next := checkinAgain(t, ts, ag, etag)
	if code != http.StatusOK {
		t.Fatalf("check-in right after %s: %d, want 200 with the new answer (a stale cached answer was served)", what, code)
	}
	if next == "" || next == etag {
		t.Fatalf("check-in right after %s: ETag %q, want a new one (was %q)", what, next, etag)
	}
	if code, _, again := checkinAgain(t, ts, ag, next); code != http.StatusNotModified || again != next {
		t.Fatalf("check-in after %s with the new ETag: %d %q, want 304 %q", what, code, again, next)
	}
	return ci, next
}

// TestAttackStaleCheckinAnswer: check-in answers are cached per group and
// a 304 is decided from the cached ETag without building the answer. Each
// change an answer depends on (an approval in the agent's group, a policy
// change, a move to another group, a revocation, another agent presenting
// this agent's ETag) must change the answer at the very next check-in:
// a cache not emptied by one of them would go on answering 304 to an
// agent that must learn of the change (an approved security update never
// installed, a revoked agent still told nothing changed).
func TestAttackStaleCheckinAnswer(t *testing.T) {
	onBothStores(t, testStaleCheckinAnswer)
}

func testStaleCheckinAnswer(t *testing.T, cfg Config) {
	v := newVendorRepo(t, "example")
	v.publish(t, "BW-1", "critical", map[string]string{"a.deb": "aaaa"})
	cfg.Vendors = []HostedVendor{{Name: "example", Dir: v.dir}}
	ts := startServer(t, cfg)
	if _, err := ts.SyncAll(context.Background(), "", "manual"); err != nil {
		t.Fatal(err)
	}
	ts.admin("POST", "/api/v1/groups", GroupRequest{Name: "web"}, http.StatusCreated)
	tok := ts.newToken(TokenRequest{Kind: "enroll", Group: "web", MaxUses: 2, ExpiresIn: "1h"})
	ag := ts.enroll(tok, machineA, "")
	other := ts.enroll(tok, machineB, "")

	code, ci, etag := checkinAgain(t, ts, ag, "")
	if code != http.StatusOK || etag == "" || ci.AgentID != ag.resp.AgentID || ci.Group != "web" || ci.Policy != nil {
		t.Fatalf("first check-in: %d %q %+v", code, etag, ci)
	}
	if code, _, again := checkinAgain(t, ts, ag, etag); code != http.StatusNotModified || again != etag {
		t.Fatalf("unchanged check-in: %d %q, want 304 %q", code, again, etag)
	}

	// Another agent of the same group presenting this agent's ETag gets
	// its own answer: the ETag names the agent, not only the group.
	if code, oci, oetag := checkinAgain(t, ts, other, etag); code != http.StatusOK || oci.AgentID != other.resp.AgentID || oetag == etag {
		t.Fatalf("other agent with this agent's ETag: %d %+v %q", code, oci, oetag)
	}

	// An approval in the agent's group.
	ts.admin("PUT", "/api/v1/groups/web/approvals/example/BW-1", ApprovalRequest{Action: "install"}, 200)
	after, etag := changedAtOnce(t, ts, ag, etag, "an approval")
	if after.ApprovalsHash == ci.ApprovalsHash {
		t.Fatalf("approvals hash unchanged after an approval: %s", after.ApprovalsHash)
	}

	// A policy change of the agent's group.
	ts.admin("PUT", "/api/v1/groups/web/policy", policy.Group{Mode: "auto", AutoInstallSeverity: "critical"}, 200)
	ci, etag = changedAtOnce(t, ts, ag, etag, "a policy change")
	if ci.Policy == nil || ci.Policy.Mode != "auto" {
		t.Fatalf("policy after a change: %+v", ci.Policy)
	}

	// A move to another group (its answer cached already by the other
	// agent's check-in there would be no excuse either).
	ts.admin("POST", "/api/v1/groups/default/computers", MoveRequest{Computers: []string{ag.resp.AgentID}}, 200)
	ci, etag = changedAtOnce(t, ts, ag, etag, "a move to another group")
	if ci.Group != "default" || ci.Approvals != "approvals/default.json" || ci.Policy != nil {
		t.Fatalf("answer after a move: %+v", ci)
	}

	// A revocation: refused at once, whatever ETag comes with it.
	ts.admin("POST", "/api/v1/computers/"+ag.resp.AgentID+"/revoke", nil, http.StatusNoContent)
	if code, _, _ := checkinAgain(t, ts, ag, etag); code != http.StatusForbidden {
		t.Fatalf("revoked agent's conditional check-in: %d, want 403", code)
	}
}

// TestReplicasCheckinAnswerFollowsOtherReplica: a policy change and a
// move made through replica A change replica B's cached check-in answer
// (the policy through LISTEN/NOTIFY, the move because the agent's row is
// read on every request).
func TestReplicasCheckinAnswerFollowsOtherReplica(t *testing.T) {
	a, b, _ := startReplicas(t)
	a.admin("POST", "/api/v1/groups", GroupRequest{Name: "web"}, http.StatusCreated)
	tok := a.newToken(TokenRequest{Kind: "enroll", Group: "web", ExpiresIn: "1h"})
	ag := a.enroll(tok, machineA, "")
	code, _, etag := checkinAgain(t, b, ag, "")
	if code != http.StatusOK {
		t.Fatalf("check-in: %d", code)
	}
	if code, _, _ := checkinAgain(t, b, ag, etag); code != http.StatusNotModified {
		t.Fatalf("unchanged check-in: %d", code)
	}
	// The notification reaches B a moment later: wait for it (bounded).
	a.admin("PUT", "/api/v1/groups/web/policy", policy.Group{Mode: "auto"}, 200)
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, ci, next := checkinAgain(t, b, ag, etag)
		if code == http.StatusOK {
			if ci.Policy == nil || ci.Policy.Mode != "auto" {
				t.Fatalf("replica B's answer after a policy change on A: %+v", ci.Policy)
			}
			etag = next
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("10 s after a policy change on replica A, replica B still answers %d to the old ETag", code)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, _, _ := checkinAgain(t, b, ag, etag); code != http.StatusNotModified {
		t.Fatalf("check-in with the new ETag: %d, want 304", code)
	}
	a.admin("POST", "/api/v1/groups/default/computers", MoveRequest{Computers: []string{ag.resp.AgentID}}, 200)
	ci, _ := changedAtOnce(t, b, ag, etag, "a move on the other replica")
	if ci.Group != "default" || ci.Policy != nil {
		t.Fatalf("replica B's answer after a move on A: %+v", ci)
	}
}

// FuzzValidMachineID: the machine id check every agent request runs
// accepts exactly what the pattern of /etc/machine-id ids accepts.
func FuzzValidMachineID(f *testing.F) {
	for _, s := range []string{machineA, "", "1234567", "12345678", "abc-DEF-0123", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0", "abcdefgh\n", "abcdefg_h", "abcdéfgh", "abcdefgh\x00"} {
		f.Add(s)
	}
	re := regexp.MustCompile(`^[A-Za-z0-9-]{8,64}$`)
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := validMachineID(s), re.MatchString(s); got != want {
			t.Fatalf("validMachineID(%q) = %v, the pattern says %v", s, got, want)
		}
	})
}

// TestRequestMetricsByRouteAndCode: the request counter and latency
// histogram, looked up once per route and code, still count every request
// under its own route and code.
func TestRequestMetricsByRouteAndCode(t *testing.T) {
	ts := startServer(t, Config{})
	ag := ts.enroll(ts.first.EnrollToken, machineA, "")
	_, _, etag := checkinAgain(t, ts, ag, "")
	for range 3 {
		if code, _, _ := checkinAgain(t, ts, ag, etag); code != http.StatusNotModified {
			t.Fatalf("conditional check-in: %d", code)
		}
	}
	code, body, _ := ts.do(ts.client, "GET", "/metrics", "", nil)
	for _, want := range []string{
		`bulwark_http_requests_total{code="200",route="GET /agent/v1/checkin"} 1`,
		`bulwark_http_requests_total{code="304",route="GET /agent/v1/checkin"} 3`,
		`bulwark_http_requests_total{code="201",route="POST /agent/v1/enroll"} 1`,
		`bulwark_http_request_duration_seconds_count{route="GET /agent/v1/checkin"} 4`,
	} {
		if code != 200 || !strings.Contains(string(body), want) {
			t.Fatalf("metrics: %d, want %s in\n%s", code, want, body)
		}
	}
}
