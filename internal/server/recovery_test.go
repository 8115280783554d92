package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/store"
)

// tokenID finds the id of the API token whose secret is secret.
func (ts *testServer) tokenID(secret string) string {
	ts.t.Helper()
	t, err := ts.st.TokenByHash(context.Background(), HashToken(secret))
	if err != nil {
		ts.t.Fatal(err)
	}
	return t.ID
}

func TestLastAdminTokenCannotBeRevoked(t *testing.T) {
	ts := startServer(t, Config{})
	first := ts.tokenID(ts.first.AdminToken)
	code, body, _ := ts.do(ts.client, "DELETE", "/api/v1/tokens/"+first, ts.first.AdminToken, nil)
	if code != http.StatusConflict || !strings.Contains(string(body), "last admin token") {
		t.Fatalf("revoking the only admin token: %d %s; want 409 naming the last admin token", code, body)
	}
	// Approver and viewer tokens do not count as a way back in.
	ts.newToken(TokenRequest{Kind: store.KindAPI, Role: store.RoleViewer})
	if code, body, _ := ts.do(ts.client, "DELETE", "/api/v1/tokens/"+first, ts.first.AdminToken, nil); code != http.StatusConflict {
		t.Fatalf("revoking the only admin token beside a viewer token: %d %s; want 409", code, body)
	}
	second := ts.newToken(TokenRequest{Kind: store.KindAPI, Role: store.RoleAdmin})
	ts.admin("DELETE", "/api/v1/tokens/"+first, nil, http.StatusNoContent)
	if code, body, _ := ts.do(ts.client, "DELETE", "/api/v1/tokens/"+ts.tokenID(second), second, nil); code != http.StatusConflict {
		t.Fatalf("revoking the remaining admin token: %d %s; want 409", code, body)
	}
	if code, _, _ := ts.do(ts.client, "GET", "/api/v1/groups", second, nil); code != http.StatusOK {
		t.Fatalf("the remaining admin token: %d", code)
	}
}

// auditFails is a store whose audit log cannot be written.
type auditFails struct{ Store }

func (auditFails) AddAudit(context.Context, *store.AuditEntry) error { return errors.New("disk full") }

func TestResetAdminToken(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "data")
	if _, _, err := ResetAdminToken(ctx, Config{DataDir: dir}); !errors.Is(err, ErrNotStarted) {
		t.Fatalf("reset in an empty data dir: %v; want ErrNotStarted", err)
	}
	ts := startServer(t, Config{DataDir: dir})
	// Every admin token lost: the first one is revoked after a second
	// admin token was made, and that one is forgotten.
	ts.newToken(TokenRequest{Kind: store.KindAPI, Role: store.RoleAdmin})
	ts.admin("DELETE", "/api/v1/tokens/"+ts.tokenID(ts.first.AdminToken), nil, http.StatusNoContent)
	// Whoever owns the data directory makes a new one, while the server
	// runs.
	secret, tok, err := ResetAdminToken(ctx, Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if tok.Role != store.RoleAdmin || !strings.HasPrefix(secret, apiTokenPrefix) {
		t.Fatalf("reset made %+v (%q)", tok, secret)
	}
	// The reset is in the audit log, and shows in the API's.
	es, err := ts.st.ListAudit(ctx, 0, 1)
	if err != nil || len(es) != 1 || es[0].Action != "admin-token.reset" || es[0].Target != tok.ID || es[0].Via != "cli" ||
		!strings.HasPrefix(es[0].Actor, "local:") || es[0].Remote != "local" {
		t.Fatalf("audit after the reset = %+v %v", es, err)
	}
	if code, body, _ := ts.do(ts.client, "GET", "/api/v1/audit?limit=1", secret, nil); code != http.StatusOK || !strings.Contains(string(body), `"admin-token.reset"`) {
		t.Fatalf("audit API: %d %s", code, body)
	}
	// A reset that cannot be recorded leaves no usable token behind.
	before, _ := ts.st.ListTokens(ctx, store.KindAPI)
	if _, _, err := ResetAdminToken(ctx, Config{DataDir: dir, Store: auditFails{ts.st}}); err == nil || !strings.Contains(err.Error(), "audit log") {
		t.Fatalf("reset with the audit log failing: %v", err)
	}
	after, _ := ts.st.ListTokens(ctx, store.KindAPI)
	usable := 0
	for _, tk := range after {
		if tk.Usable(time.Now()) {
			usable++
		}
	}
	if len(after) != len(before)+1 || usable != 2 {
		t.Fatalf("after an unrecorded reset: %d tokens (%d before), %d usable; want the new one revoked", len(after), len(before), usable)
	}
	code, body, _ := ts.do(ts.client, "GET", "/api/v1/tokens", secret, nil)
	if code != http.StatusOK {
		t.Fatalf("the reset token: %d %s", code, body)
	}
	var list struct{ Tokens []store.Token }
	json.Unmarshal(body, &list)
	if len(list.Tokens) == 0 {
		t.Fatalf("token list: %s", body)
	}
}
