package agent

import (
	"errors"
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
		{"vendor pins", "vendor_pins:\n  debian: sha256:" + strings.Repeat("A", 64) + "\n", ""},
		{"bad vendor pin", "vendor_pins: {debian: sha256:00}\n", `vendor_pins: vendor debian: root fingerprint "sha256:00": want sha256:<64 hex digits>`},
		{"bad vendor name", "vendor_pins: {\"Debian 12\": sha256:00}\n", "vendor_pins: "},
		{"lockdown profile", "lockdown_profile: sysadmin\n", ""},
		{"unknown lockdown profile", "lockdown_profile: paranoid\n", `lockdown_profile "paranoid": use one of end-user, small-business, sysadmin, web-server`},
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

// Enrollment writes the server part to its own drop-in: the
// administrator's agent.yaml (a dpkg conffile) keeps its bytes, comments
// and `reboot_command: []`, which means never reboot, also after enrolling
// again; drop-ins merge in lexical order, each overriding what it sets.
func TestConfigOwnershipAndDropIns(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "agent.yaml")
	admin := "# Our fleet policy: never reboot by itself (the app team does it).\nmode: auto   # install important and above\nreboot_command: []\n"
	if err := os.WriteFile(p, []byte(admin), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, srv := range []string{"https://one:8443", "https://two:8443"} {
		if err := SaveEnrollment(p, FileConfig{Server: srv, CAFingerprint: "sha256:ab", Group: "web", StateDir: dir + "/state", Mode: "notify", RebootCommand: []string{"x"}}); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(p); string(b) != admin {
			t.Fatalf("enrollment rewrote the administrator's file:\n%s", b)
		}
		s, err := LoadConfig(p)
		if err != nil {
			t.Fatal(err)
		}
		if s.Server != srv || s.StateDir != dir+"/state" || s.Policy.Mode != ModeAuto {
			t.Fatalf("merged settings %+v", s)
		}
		if s.RebootCommand == nil || len(s.RebootCommand) != 0 {
			t.Fatalf("reboot_command: [] became %#v; it means never reboot", s.RebootCommand)
		}
	}
	// The enrollment drop-in holds only the server part.
	b, err := os.ReadFile(filepath.Join(DropInDir(p), EnrollmentFile))
	if err != nil || strings.Contains(string(b), "mode") || strings.Contains(string(b), "reboot") {
		t.Fatalf("enrollment drop-in:\n%s %v", b, err)
	}
	// Later drop-ins win, in lexical order; a bad key names its file.
	os.WriteFile(filepath.Join(DropInDir(p), "90-window.yaml"), []byte("mode: scheduled\nmaintenance_window: sat 02:00-04:00\n"), 0o644)
	os.WriteFile(filepath.Join(DropInDir(p), "10-early.yaml"), []byte("mode: notify\nbandwidth_limit: 2mbit\n"), 0o644)
	os.WriteFile(filepath.Join(DropInDir(p), "README"), []byte("not yaml: ignored"), 0o644)
	s, err := LoadConfig(p)
	if err != nil || s.Policy.Mode != ModeScheduled || s.Rate != 250000 {
		t.Fatalf("drop-ins: %+v %v", s, err)
	}
	os.WriteFile(filepath.Join(DropInDir(p), "95-typo.yaml"), []byte("mdoe: auto\n"), 0o644)
	if _, err := LoadConfig(p); err == nil || !strings.Contains(err.Error(), "95-typo.yaml") {
		t.Fatalf("a typo in a drop-in: %v", err)
	}
	// With no agent.yaml at all, the drop-ins are the configuration.
	os.Remove(filepath.Join(DropInDir(p), "95-typo.yaml"))
	os.Remove(p)
	if s, err := LoadConfig(p); err != nil || s.Server != "https://two:8443" || len(s.RebootCommand) != 2 {
		t.Fatalf("drop-ins alone: %+v %v", s, err)
	}
	if _, err := LoadConfig(filepath.Join(dir, "none.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("no configuration: %v", err)
	}
}

// Vendor pins in the configuration are read in canonical form and decide
// together with the enrollment's; two different pins for one vendor stop
// the agent.
func TestConfigVendorPins(t *testing.T) {
	a, b := "sha256:"+strings.Repeat("a", 64), "sha256:"+strings.Repeat("b", 64)
	s, err := (FileConfig{VendorPins: map[string]string{"debian": strings.ToUpper(a)}}).Check()
	if err != nil || s.VendorPins["debian"] != a {
		t.Fatalf("vendor_pins = %v, %v; want debian=%s", s.VendorPins, err, a)
	}
	pins, err := vendorPins(&Enrollment{VendorPins: map[string]string{"acme": b}}, s)
	if err != nil || pins["debian"] != a || pins["acme"] != b || len(pins) != 2 {
		t.Fatalf("pins = %v, %v; want the enrollment's and the configuration's", pins, err)
	}
	if _, err := vendorPins(&Enrollment{VendorPins: map[string]string{"debian": b}}, s); err == nil ||
		!strings.Contains(err.Error(), "vendor debian: the configuration (vendor_pins) pins root "+a+", but the enrollment (--vendor) pins "+b) {
		t.Fatalf("err = %v, want the contradiction refused", err)
	}
}
