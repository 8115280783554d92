package agent

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/bulwarkhq/bulwark/internal/atomicfile"

	"github.com/bulwarkhq/bulwark/internal/catalog"
)

// DefaultConfigPath is where the agent's configuration lives.
const DefaultConfigPath = "/etc/bulwark/agent.yaml"

// FileConfig is /etc/bulwark/agent.yaml. Enrollment writes the server part;
// an administrator (or configuration management) sets the policy.
type FileConfig struct {
	Server              string   `yaml:"server"`                          // https://host:8443
	CAFingerprint       string   `yaml:"ca_fingerprint"`                  // sha256:… of the site CA pinned at enrollment
	Group               string   `yaml:"group,omitempty"`                 // client-side targeting request; the server decides
	StateDir            string   `yaml:"state_dir,omitempty"`             // default /var/lib/bulwark
	Root                string   `yaml:"root,omitempty"`                  // default /; a directory for golden images and tests
	Mode                string   `yaml:"mode,omitempty"`                  // notify|download|auto|scheduled; default download
	AutoInstallSeverity string   `yaml:"auto_install_severity,omitempty"` // default important
	MaintenanceWindow   string   `yaml:"maintenance_window,omitempty"`    // scheduled mode: "sat,sun 02:00-05:00"
	DetectionInterval   string   `yaml:"detection_interval,omitempty"`    // default 22h
	BandwidthLimit      string   `yaml:"bandwidth_limit,omitempty"`       // e.g. 2mbit, 500kbit, 1MB (per second); empty: none
	RebootCommand       []string `yaml:"reboot_command,omitempty"`        // default [systemctl, reboot]; [] never reboots
	Socket              string   `yaml:"socket,omitempty"`                // default /run/bulwark/agent.sock
	BootIDPath          string   `yaml:"boot_id_path,omitempty"`          // default /proc/sys/kernel/random/boot_id
}

// Settings are a FileConfig checked and with defaults applied.
type Settings struct {
	FileConfig
	Policy   Policy
	Interval time.Duration
	Rate     int64 // bandwidth limit in bytes per second; 0 = none
}

// LoadConfig reads and checks an agent configuration file. Unknown keys and
// bad values are refused with the key named and what would be valid.
func LoadConfig(path string) (*Settings, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("agent config: %w", err)
	}
	if len(b) > 1<<20 {
		return nil, fmt.Errorf("agent config %s: larger than 1 MiB", path)
	}
	var fc FileConfig
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&fc); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("agent config %s: %w", path, err)
	}
	s, err := fc.Check()
	if err != nil {
		return nil, fmt.Errorf("agent config %s: %w", path, err)
	}
	return s, nil
}

// Check validates the configuration and fills in defaults.
func (fc FileConfig) Check() (*Settings, error) {
	s := &Settings{FileConfig: fc}
	if s.StateDir == "" {
		s.StateDir = "/var/lib/bulwark"
	}
	if s.Root == "" {
		s.Root = "/"
	}
	if s.Socket == "" {
		s.Socket = DefaultSocket
	}
	if s.Mode == "" {
		s.Mode = string(ModeDownload)
	}
	if s.AutoInstallSeverity == "" {
		s.AutoInstallSeverity = string(catalog.SeverityImportant)
	}
	if s.RebootCommand == nil {
		s.RebootCommand = []string{"systemctl", "reboot"}
	}
	var err error
	if s.Policy.Mode, err = ParseMode(s.Mode); err != nil {
		return nil, fmt.Errorf("mode: %w", err)
	}
	if s.Policy.AutoInstallSeverity, err = catalog.ParseSeverity(s.AutoInstallSeverity); err != nil {
		return nil, fmt.Errorf("auto_install_severity: %w", err)
	}
	if s.Policy.Mode == ModeScheduled {
		if s.MaintenanceWindow == "" {
			return nil, errors.New("maintenance_window: scheduled mode needs one, e.g. \"sat,sun 02:00-05:00\"")
		}
		if s.Policy.Window, err = ParseWindow(s.MaintenanceWindow); err != nil {
			return nil, err
		}
	}
	s.Interval = 22 * time.Hour
	if s.DetectionInterval != "" {
		if s.Interval, err = time.ParseDuration(s.DetectionInterval); err != nil || s.Interval < time.Minute {
			return nil, fmt.Errorf("detection_interval %q: use a duration of at least 1m, e.g. 22h", s.DetectionInterval)
		}
	}
	if fc.BandwidthLimit != "" {
		if s.Rate, err = ParseRate(fc.BandwidthLimit); err != nil {
			return nil, fmt.Errorf("bandwidth_limit: %w", err)
		}
	}
	if fc.Server != "" && !strings.HasPrefix(fc.Server, "https://") {
		return nil, fmt.Errorf("server %q: use an https:// URL; the agent never talks to its server in the clear", fc.Server)
	}
	return s, nil
}

// ParseRate reads a bandwidth such as "2mbit", "500kbit", "1MB" or "64KiB"
// (per second) and returns bytes per second.
func ParseRate(v string) (int64, error) {
	s := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(v), "/s"))
	units := []struct {
		suffix string
		mult   float64
	}{{"gbit", 1e9 / 8}, {"mbit", 1e6 / 8}, {"kbit", 1e3 / 8}, {"gib", 1 << 30}, {"mib", 1 << 20}, {"kib", 1 << 10}, {"gb", 1e9}, {"mb", 1e6}, {"kb", 1e3}, {"b", 1}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
			if err != nil || f <= 0 {
				break
			}
			return int64(f * u.mult), nil
		}
	}
	return 0, fmt.Errorf("%q is not a rate; use a number with kbit, mbit, gbit, KB, MB, KiB or MiB (per second), e.g. 2mbit", v)
}

// SaveConfig writes the configuration file atomically, creating its
// directory.
func SaveConfig(path string, fc FileConfig) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := yaml.Marshal(fc)
	if err != nil {
		return err
	}
	head := []byte("# Bulwark agent configuration. `bulwark agent enroll` wrote the server part;\n# see `bulwark agent run --help` for every setting.\n")
	return atomicfile.WriteFile(path, append(head, b...), 0o644)
}
