package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadConfig(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"defaults", "server: https://updates.example:8443\n", ""},
		{"scheduled", "server: https://s\nmode: scheduled\nmaintenance_window: sat,sun 02:00-05:00\nbandwidth_limit: 2mbit\ndetection_interval: 6h\n", ""},
		{"unknown key", "server: https://s\nbandwith_limit: 2mbit\n", "field bandwith_limit not found"},
		{"bad mode", "mode: yolo\n", `policy mode "yolo": use notify, download, auto or scheduled`},
		{"bad severity", "auto_install_severity: urgent\n", "auto_install_severity"},
		{"scheduled without window", "mode: scheduled\n", "maintenance_window: scheduled mode needs one"},
		{"plain http", "server: http://s\n", "use an https:// URL"},
		{"bad rate", "bandwidth_limit: fast\n", "is not a rate"},
		{"short interval", "detection_interval: 5s\n", "at least 1m"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "agent.yaml")
			os.WriteFile(p, []byte(tc.yaml), 0o644)
			s, err := LoadConfig(p)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			_ = s
		})
	}
	s, err := (FileConfig{Mode: "scheduled", MaintenanceWindow: "daily 01:00-03:00", BandwidthLimit: "2mbit", DetectionInterval: "6h"}).Check()
	if err != nil || s.Rate != 250000 || s.Interval != 6*time.Hour || s.Policy.Mode != ModeScheduled || s.StateDir != "/var/lib/bulwark" {
		t.Fatalf("settings %+v, %v", s, err)
	}
}

func TestConfigRoundTrip(t *testing.T) {
	p := filepath.Join(t.TempDir(), "etc", "agent.yaml")
	fc := FileConfig{Server: "https://s:8443", CAFingerprint: "sha256:ab", Group: "web", Mode: "auto"}
	if err := SaveConfig(p, fc); err != nil {
		t.Fatal(err)
	}
	s, err := LoadConfig(p)
	if err != nil || s.Server != fc.Server || s.Group != "web" || s.Policy.Mode != ModeAuto {
		t.Fatalf("%+v %v", s, err)
	}
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]int64{"8mbit": 1_000_000, "500kbit": 62_500, "1MB": 1_000_000, "64KiB/s": 65536, "1.5mbit": 187_500} {
		if got, err := ParseRate(in); err != nil || got != want {
			t.Errorf("ParseRate(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "-1mbit", "mbit", "10 furlongs"} {
		if _, err := ParseRate(bad); err == nil {
			t.Errorf("ParseRate(%q) accepted", bad)
		}
	}
}
