package e2e

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/agent"
	"github.com/bulwarkhq/bulwark/internal/debtest"
	"github.com/bulwarkhq/bulwark/internal/policy"
	"github.com/bulwarkhq/bulwark/internal/store"
)

// TestGroupPolicyLockdownHardensNewMachine is the issue's "locked down by
// default": the group's policy names a lockdown profile with a waiver; a
// fresh machine enrolls into the group and its first check-in hardens its
// root without anyone running a command on it (the waived rule left
// alone); the server shows the computer's audit (source policy, the waived
// rule as waived, nothing failing) per computer and per group; a bad
// waiver is refused by the API with the field named.
func TestGroupPolicyLockdownHardensNewMachine(t *testing.T) {
	ctx := context.Background()
	vendorDir := newVendorRepo(t, "debian", "BW-1", debtest.Package{Name: "libfoo", Version: "1.1", Files: map[string]string{"/usr/lib/libfoo.txt": "1.1\n"}})
	srv, adm, tok := startServer(t, vendorDir)
	adm.do("PUT", "/api/v1/groups/web/policy", policy.Group{Lockdown: &policy.Lockdown{Profile: "nope"}}, http.StatusBadRequest)
	adm.do("PUT", "/api/v1/groups/web/policy", policy.Group{Lockdown: &policy.Lockdown{Profile: "small-business",
		Waivers: []policy.Waiver{{Rule: "nginx-server-tokens", Reason: "x", Expires: "2027-01-01"}}}}, http.StatusBadRequest)
	adm.do("PUT", "/api/v1/groups/web/policy", policy.Group{Lockdown: &policy.Lockdown{Profile: "small-business",
		Waivers: []policy.Waiver{{Rule: "login-umask", Reason: "the build farm needs 022", Expires: "2099-12-31"}}}}, http.StatusOK)

	root := debianRoot(t, "web-01", "0123456789abcdef0123456789abcdef")
	defs := "PASS_MAX_DAYS 99999\nUMASK 022\n"
	os.WriteFile(filepath.Join(root, "etc/login.defs"), []byte(defs), 0o644)
	os.MkdirAll(filepath.Join(root, "etc/ssh"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/ssh/sshd_config"), []byte("X11Forwarding yes\n"), 0o644)
	e, settings, _, _ := enroll(t, srv, tok, root, "notify")
	d, sc, closeAgent, err := agent.Build(settings, "amd64", "test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer closeAgent()
	if err := d.CheckInWith(ctx, sc); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(root, "etc/login.defs"))
	if !strings.Contains(string(got), "\nPASS_MAX_DAYS 365\n") || !strings.Contains(string(got), "UMASK 022") || strings.Contains(string(got), "UMASK 027") {
		t.Fatalf("login.defs after the first check-in (hardened, the waived umask left alone):\n%s", got)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "etc/ssh/sshd_config")); !strings.Contains(string(b), "PermitRootLogin no") {
		t.Fatalf("sshd_config after the first check-in:\n%s", b)
	}
	var l store.LockdownStatus
	json.Unmarshal(adm.do("GET", "/api/v1/computers/"+e.AgentID+"/lockdown", nil, http.StatusOK), &l)
	if l.Profile != "small-business" || l.Source != "policy" || l.Fail != 0 || l.Waived != 1 || l.AppliedAt == nil || l.Drift != 0 ||
		len(l.Rules) != 1 || l.Rules[0].ID != "login-umask" || l.Rules[0].Result != "waived" {
		t.Fatalf("the server shows %+v", l)
	}
	var g store.GroupLockdown
	json.Unmarshal(adm.do("GET", "/api/v1/groups/web/lockdown", nil, http.StatusOK), &g)
	if g.Reporting != 1 || g.Compliant != 1 || g.AvgScore != 100 {
		t.Fatalf("the group shows %+v", g)
	}
}
