package server

import (
	"context"
	"net/http"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/store"
)

// TestAttackEnrollmentTakesOverMachineID (F2): a holder of an enrollment
// token claims the machine id of an enrolled computer (machine ids are
// world-readable and shown to viewers). The victim keeps working; the
// claimant's identity waits for an admin and is refused until then; only
// an admin's approval, or a re-enrollment that presents the victim's own
// certificate, retires the victim.
func TestAttackEnrollmentTakesOverMachineID(t *testing.T) {
	ts := startServer(t, Config{})
	victim := ts.enroll(ts.first.EnrollToken, machineA, "")
	tok := ts.newToken(TokenRequest{Kind: "enroll"})

	attacker := ts.enroll(tok, machineA, "")
	if attacker.resp.Status != store.AgentPending || attacker.resp.Message == "" {
		t.Fatalf("claimed machine id: status %q %q, want pending with a message", attacker.resp.Status, attacker.resp.Message)
	}
	if code, body, _ := ts.agentDo(victim, victim.client, "GET", "/agent/v1/checkin", nil, nil); code != http.StatusOK {
		t.Fatalf("victim after the claim: %d %s, want 200", code, body)
	}
	if code, body, _ := ts.agentDo(attacker, attacker.client, "GET", "/agent/v1/checkin", nil, nil); code != http.StatusForbidden {
		t.Fatalf("pending claimant checks in: %d %s, want 403", code, body)
	}
	ag, _ := ts.st.Agent(context.Background(), victim.resp.AgentID)
	if ag.Status != store.AgentActive {
		t.Fatalf("victim is %s after the claim", ag.Status)
	}
	// A second claim changes nothing either.
	ts.enroll(tok, machineA, "")
	if code, _, _ := ts.agentDo(victim, victim.client, "GET", "/agent/v1/checkin", nil, nil); code != http.StatusOK {
		t.Fatalf("victim after a second claim: %d", code)
	}

	// Approving something that is not pending is refused.
	ts.admin("POST", "/api/v1/computers/"+victim.resp.AgentID+"/approve", nil, http.StatusConflict)

	// The real machine re-enrolls with its certificate: proof of
	// possession, its old identity is retired at once, the new one is
	// active; the pending claims stay pending.
	again := ts.enrollFrom(victim.client, tok, machineA, "")
	if again.resp.Status != store.AgentActive {
		t.Fatalf("re-enrollment with the old certificate: %q %q", again.resp.Status, again.resp.Message)
	}
	if code, _, _ := ts.agentDo(victim, victim.client, "GET", "/agent/v1/checkin", nil, nil); code != http.StatusForbidden {
		t.Fatalf("the replaced identity still checks in: %d", code)
	}
	if code, _, _ := ts.agentDo(again, again.client, "GET", "/agent/v1/checkin", nil, nil); code != http.StatusOK {
		t.Fatalf("the new identity: %d", code)
	}

	// An admin who decides the claimant is the real machine approves it:
	// then, and only then, the other identities are retired.
	ts.admin("POST", "/api/v1/computers/"+attacker.resp.AgentID+"/approve", nil, http.StatusNoContent)
	if code, _, _ := ts.agentDo(attacker, attacker.client, "GET", "/agent/v1/checkin", nil, nil); code != http.StatusOK {
		t.Fatalf("approved identity: %d", code)
	}
	if code, _, _ := ts.agentDo(again, again.client, "GET", "/agent/v1/checkin", nil, nil); code != http.StatusForbidden {
		t.Fatalf("identity replaced by the approval: %d, want 403", code)
	}
}
