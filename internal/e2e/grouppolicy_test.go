package e2e

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/agent"
	"github.com/bulwarkhq/bulwark/internal/debtest"
	"github.com/bulwarkhq/bulwark/internal/policy"
)

// TestGroupPolicyReachesAgentAtCheckIn: an agent whose agent.yaml says
// notify leaves an approved critical update alone; the admin sets the
// group's central policy to auto; at its next check-in the real agent
// (over mTLS, the server's ETag changed) takes the policy and installs the
// .deb with dpkg into its root. agent.yaml overrides only what the policy
// allows; the policy survives a restart without the server; clearing it
// gives agent.yaml back.
func TestGroupPolicyReachesAgentAtCheckIn(t *testing.T) {
	ctx := context.Background()
	vendorDir := newVendorRepo(t, "debian", "BW-1", debtest.Package{Name: "libfoo", Version: "1.1", Files: map[string]string{"/usr/lib/libfoo.txt": "1.1\n"}})
	srv, adm, tok := startServer(t, vendorDir, "BW-1")

	root := debianRoot(t, "web-01", "0123456789abcdef0123456789abcdef")
	_, settings, _, _ := enroll(t, srv, tok, root, "notify")
	// agent.yaml also caps the bandwidth and sets a check-in interval.
	settings.FileConfig.BandwidthLimit, settings.FileConfig.DetectionInterval = "1mbit", "22h"
	settings, err := settings.FileConfig.Check()
	if err != nil {
		t.Fatal(err)
	}
	build := func() (*agent.Daemon, *agent.ServerClient, func()) {
		d, sc, closeAgent, err := agent.Build(settings, "amd64", "test", slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		return d, sc, closeAgent
	}
	d, sc, closeAgent := build()
	defer func() { closeAgent() }()
	installed := func() bool {
		_, err := os.Stat(filepath.Join(root, "usr/lib/libfoo.txt"))
		return err == nil
	}
	setting := func(d *agent.Daemon, key string) agent.Setting {
		for _, s := range d.Status().Settings {
			if s.Key == key {
				return s
			}
		}
		t.Fatalf("status has no setting %s: %+v", key, d.Status().Settings)
		return agent.Setting{}
	}

	if err := d.CheckInWith(ctx, sc); err != nil {
		t.Fatal(err)
	}
	if installed() || d.Status().Mode != agent.ModeNotify || setting(d, "mode").From != policy.FromLocal {
		t.Fatalf("before any group policy: installed %v, status %+v; want notify from agent.yaml and nothing installed", installed(), d.Status())
	}

	// The admin sets the group's policy; agent.yaml may keep its own
	// bandwidth limit but not its mode or interval.
	adm.do("PUT", "/api/v1/groups/web/policy", policy.Group{Mode: "auto", AutoInstallSeverity: "critical", DetectionInterval: "2h",
		BandwidthLimit: "8mbit", AllowLocal: []string{"bandwidth_limit"}}, http.StatusOK)
	if err := d.CheckInWith(ctx, sc); err != nil {
		t.Fatal(err)
	}
	if !installed() {
		t.Fatalf("after the policy's check-in the critical update is not installed; status %+v, updates %+v", d.Status(), d.Updates())
	}
	for key, want := range map[string]agent.Setting{
		"mode":                  {Key: "mode", Value: "auto", From: policy.FromGroup},
		"auto_install_severity": {Key: "auto_install_severity", Value: "critical", From: policy.FromGroup},
		"detection_interval":    {Key: "detection_interval", Value: "2h0m0s", From: policy.FromGroup},
		"bandwidth_limit":       {Key: "bandwidth_limit", Value: "1mbit", From: policy.FromLocal},
		"download":              {Key: "download", Value: "background", From: policy.FromDefault},
	} {
		if got := setting(d, key); got != want {
			t.Errorf("setting %s = %+v, want %+v", key, got, want)
		}
	}
	if d.Interval() != 2*time.Hour {
		t.Errorf("check-in interval %v, want the group's 2h", d.Interval())
	}
	var gp struct {
		Policy policy.Group `json:"policy"`
	}
	json.Unmarshal(adm.do("GET", "/api/v1/groups/web/policy", nil, http.StatusOK), &gp)
	if gp.Policy.Mode != "auto" {
		t.Fatalf("API shows policy %+v", gp.Policy)
	}

	// Restarted while the server is away: the kept policy applies before
	// any check-in.
	closeAgent()
	d, sc, closeAgent = build()
	if got := setting(d, "mode"); got.Value != "auto" || got.From != policy.FromGroup {
		t.Fatalf("after a restart the mode is %+v, want auto from the kept group policy", got)
	}

	// Cleared: agent.yaml decides again at the next check-in.
	adm.do("PUT", "/api/v1/groups/web/policy", policy.Group{}, http.StatusOK)
	if err := d.CheckInWith(ctx, sc); err != nil {
		t.Fatal(err)
	}
	if got := setting(d, "mode"); got.Value != "notify" || got.From != policy.FromLocal || d.Interval() != 22*time.Hour {
		t.Fatalf("after clearing the policy: mode %+v, interval %v; want notify from agent.yaml, 22h", got, d.Interval())
	}
	if _, err := os.Stat(filepath.Join(settings.StateDir, "group-policy.json")); !os.IsNotExist(err) {
		t.Fatalf("the cleared policy is still kept: %v", err)
	}
}
