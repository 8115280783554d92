package agent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/bulwarkhq/bulwark/internal/fetch"
	"github.com/bulwarkhq/bulwark/internal/policy"
)

func TestLoadConfig(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"defaults", "server: https://updates.example:8443\n", ""},
		{"scheduled", "server: https://s\nmode: scheduled\nmaintenance_window: sat,sun 02:00-05:00\nbandwidth_limit: 2mbit\ndetection_interval: 6h\n", ""},
		{"unknown key", "server: https://s\nbandwith_limit: 2mbit\n", "unknown key bandwith_limit (valid keys: server, ca_fingerprint"},
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

// TestConfigLayers: agent.yaml < its drop-ins (in order) <
// BULWARK_AGENT_* < flags, defaults below all; a default is not a local
// setting, so a group policy beats it even where it allows local ones,
// while a variable or a flag is local.
func TestConfigLayers(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "agent.yaml")
	os.WriteFile(p, []byte("mode: notify\ndetection_interval: 6h\nbandwidth_limit: 1mbit\nlog: {level: warn}\n"), 0o644)
	os.MkdirAll(DropInDir(p), 0o755)
	os.WriteFile(filepath.Join(DropInDir(p), "50-enrollment.yaml"), []byte("server: https://s:8443\nstate_dir: "+dir+"/state\n"), 0o644)
	os.WriteFile(filepath.Join(DropInDir(p), "60-late.yaml"), []byte("detection_interval: 8h\ndownload: foreground\n"), 0o644)
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	Table.Register(fs)
	if err := fs.Parse([]string{"--bandwidth-limit", "4mbit", "--socket", dir + "/flag.sock"}); err != nil {
		t.Fatal(err)
	}
	env := []string{"BULWARK_AGENT_MODE=auto", "BULWARK_AGENT_BANDWIDTH_LIMIT=2mbit", "BULWARK_AGENT_ROOT=", "BULWARK_AGENT_SOCKET=" + dir + "/env.sock"}
	s, err := Load(p, Layers{Environ: func() []string { return env }, Flags: fs})
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case s.Policy.Mode != ModeAuto:
		t.Errorf("mode %v: the variable beats the file", s.Policy.Mode)
	case s.Interval != 8*time.Hour:
		t.Errorf("interval %v: the later drop-in beats the file", s.Interval)
	case s.Download != fetch.Foreground:
		t.Errorf("download %v: from a drop-in", s.Download)
	case s.Rate != 500_000:
		t.Errorf("rate %d: the flag (4mbit) beats the variable and the file", s.Rate)
	case s.Socket != dir+"/flag.sock":
		t.Errorf("socket %q: the flag beats the variable", s.Socket)
	case s.Root != "/" || s.StateDir != dir+"/state" || s.AutoInstallSeverity != "important":
		t.Errorf("root %q state %q severity %q: defaults (an empty BULWARK_AGENT_ROOT is unset), the drop-in's state dir", s.Root, s.StateDir, s.AutoInstallSeverity)
	case s.Log.Level != "warn" || s.Log.Format != "text":
		t.Errorf("log %+v", s.Log)
	case strings.Join(s.RebootCommand, " ") != "systemctl reboot":
		t.Errorf("reboot command %v: the default", s.RebootCommand)
	}
	// The same socket for the commands that talk to the agent.
	if got := Socket(p, Layers{Environ: func() []string { return env }}); got != dir+"/env.sock" {
		t.Errorf("Socket = %q: the variable beats the file and the default", got)
	}
	if got := Socket(filepath.Join(dir, "none.yaml"), Layers{}); got != DefaultSocket {
		t.Errorf("Socket without configuration = %q", got)
	}

	// Under a group policy allowing local mode and auto_install_severity:
	// the variable's mode stays; the default severity is not local.
	g := &policy.Group{Mode: "notify", AutoInstallSeverity: "critical", DetectionInterval: "12h", AllowLocal: []string{"mode", "auto_install_severity"}}
	gs, err := s.Local.WithGroup(g)
	if err != nil {
		t.Fatal(err)
	}
	if gs.Policy.Mode != ModeAuto || gs.AutoInstallSeverity != "critical" || gs.Interval != 12*time.Hour {
		t.Fatalf("with the group: mode %v severity %q interval %v", gs.Policy.Mode, gs.AutoInstallSeverity, gs.Interval)
	}
}

// TestConfigLayerErrors: a bad value names its file and key, its variable
// or its flag.
func TestConfigLayerErrors(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "agent.yaml")
	os.WriteFile(p, []byte("server: https://s\n"), 0o644)
	for _, tc := range []struct {
		name string
		file string
		env  []string
		args []string
		want []string
	}{
		{"file", "mode: yolo\n", nil, nil, []string{p, `mode "yolo"`, "use notify, download, auto or scheduled"}},
		{"drop-in", "", nil, nil, []string{"70-bad.yaml", `detection_interval "5s"`, "at least 1m"}},
		{"variable", "", []string{"BULWARK_AGENT_DOWNLOAD=sometimes"}, nil, []string{`BULWARK_AGENT_DOWNLOAD "sometimes"`, "background or foreground"}},
		{"flag", "", nil, []string{"--bandwidth-limit", "fast"}, []string{`--bandwidth-limit "fast"`, "is not a rate"}},
		{"flag beats a bad variable? no: each layer is checked", "", []string{"BULWARK_AGENT_MODE=yolo"}, []string{"--mode", "auto"}, []string{"BULWARK_AGENT_MODE"}},
		{"log level", "log: {level: loud}\n", nil, nil, []string{p, `log.level "loud"`, "debug, info, warn or error"}},
		{"log format in a variable", "", []string{"BULWARK_AGENT_LOG_FORMAT=xml"}, nil, []string{`BULWARK_AGENT_LOG_FORMAT "xml"`, "text or json"}},
		{"reboot command of the wrong type", "reboot_command: {a: b}\n", nil, nil, []string{p, "reboot_command", "use a list"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.WriteFile(p, []byte("server: https://s\n"+tc.file), 0o644)
			os.RemoveAll(DropInDir(p))
			if tc.name == "drop-in" {
				os.MkdirAll(DropInDir(p), 0o755)
				os.WriteFile(filepath.Join(DropInDir(p), "70-bad.yaml"), []byte("detection_interval: 5s\n"), 0o644)
			}
			fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
			Table.Register(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			_, err := Load(p, Layers{Environ: func() []string { return tc.env }, Flags: fs})
			if err == nil {
				t.Fatalf("accepted; want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("err = %v, want %q in it", err, w)
				}
			}
		})
	}
}

// The conffile the bulwark-agent package ships loads as it is.
func TestShippedConfigLoads(t *testing.T) {
	s, err := LoadConfig("../../dist/deb/agent.yaml")
	if err != nil || s.Policy.Mode != ModeDownload {
		t.Fatalf("%+v %v", s, err)
	}
}

// Settings made by Check (as tests and tools build them) carry their local
// configuration, without defaults, for the daemon's group policy.
func TestCheckKeepsLocal(t *testing.T) {
	s, err := FileConfig{Mode: "notify"}.Check()
	if err != nil || s.Local.Mode != "notify" || s.Local.StateDir != "" || s.StateDir != "/var/lib/bulwark" {
		t.Fatalf("%+v %v", s, err)
	}
}
