package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

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
