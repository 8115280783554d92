package agent

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/bulwarkhq/bulwark/internal/atomicfile"
	"github.com/bulwarkhq/bulwark/internal/catalog"
	"github.com/bulwarkhq/bulwark/internal/fetch"
	"github.com/bulwarkhq/bulwark/internal/lockdown"
	"github.com/bulwarkhq/bulwark/internal/policy"
	"github.com/bulwarkhq/bulwark/internal/tuf"
)

// DefaultConfigPath is where the agent's configuration lives.
const DefaultConfigPath = "/etc/bulwark/agent.yaml"

// FileConfig is /etc/bulwark/agent.yaml and its drop-ins
// (/etc/bulwark/agent.yaml.d/*.yaml). Enrollment writes the server part to
// its own drop-in (EnrollmentFile); an administrator (or configuration
// management) sets the policy.
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
	BandwidthLimit      string   `yaml:"bandwidth_limit,omitempty"`       // e.g. 2mbit, 500kbit, 1MB (per second); empty or none: no limit
	Download            string   `yaml:"download,omitempty"`              // scheduled downloads: background (default) or foreground
	RebootCommand       []string `yaml:"reboot_command,omitempty"`        // default [systemctl, reboot]; [] never reboots
	Socket              string   `yaml:"socket,omitempty"`                // default /run/bulwark/agent.sock
	BootIDPath          string   `yaml:"boot_id_path,omitempty"`          // default /proc/sys/kernel/random/boot_id
	MetricsTextfile     string   `yaml:"metrics_textfile,omitempty"`      // node_exporter textfile, e.g. /var/lib/prometheus/node-exporter/bulwark.prom; empty: none
	// VendorPins pin vendor roots out of band: name → sha256:… of the
	// vendor's metadata/1.root.json. A pin decides for its vendor, like a
	// --vendor pin given at enrollment (the two must agree); offline media
	// (`agent install --from-media`) are verified against these too.
	VendorPins map[string]string `yaml:"vendor_pins,omitempty"`
	// LockdownProfile is audited each cycle and reported to the server
	// (audit only) when the group's policy names no profile.
	LockdownProfile string `yaml:"lockdown_profile,omitempty"`
}

// Settings are a FileConfig checked and with defaults applied.
type Settings struct {
	FileConfig
	Policy   Policy
	Interval time.Duration
	Rate     int64      // bandwidth limit in bytes per second; 0 = none
	Download fetch.Mode // of scheduled cycles; `bulwark agent install` is always foreground
	// From says, for every group-policy setting, where its value comes
	// from: policy.FromGroup, FromLocal or FromDefault; Values are the
	// merged values as written (unset: absent).
	From, Values map[string]string
}

// EnrollmentFile is the drop-in `bulwark agent enroll` writes in the
// configuration's drop-in directory: the server part, as the server and the
// enrollment command gave it. The administrator's file is never written.
const EnrollmentFile = "50-enrollment.yaml"

// DropInDir is the drop-in directory of the configuration file path
// (/etc/bulwark/agent.yaml.d): its *.yaml files are read after path, in
// lexical order, each overriding the keys it sets.
func DropInDir(path string) string { return path + ".d" }

// ConfigFiles lists the files a configuration at path is read from: path
// itself when it exists, then the drop-ins in lexical order.
func ConfigFiles(path string) ([]string, error) {
	var files []string
	if _, err := os.Stat(path); err == nil {
		files = append(files, path)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	drop, err := filepath.Glob(filepath.Join(DropInDir(path), "*.yaml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(drop)
	files = append(files, drop...)
	if len(files) == 0 {
		return nil, fmt.Errorf("%w: neither %s nor %s/*.yaml", os.ErrNotExist, path, DropInDir(path))
	}
	return files, nil
}

// LoadConfig reads and checks an agent configuration: the file at path and
// its drop-ins (DropInDir), merged in that order. Unknown keys and bad
// values are refused with the file and the key named and what would be
// valid.
func LoadConfig(path string) (*Settings, error) {
	files, err := ConfigFiles(path)
	if err != nil {
		return nil, fmt.Errorf("agent config: %w", err)
	}
	var fc FileConfig
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("agent config: %w", err)
		}
		if len(b) > 1<<20 {
			return nil, fmt.Errorf("agent config %s: larger than 1 MiB", f)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(&fc); err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("agent config %s: %w", f, err)
		}
	}
	s, err := fc.WithGroup(nil)
	if err != nil {
		return nil, fmt.Errorf("agent config %s: %w", strings.Join(files, ", "), err)
	}
	return s, nil
}

// SaveEnrollment writes the server part of fc (server, ca_fingerprint,
// group, state_dir, root) to the drop-in EnrollmentFile of the
// configuration at path, atomically. The administrator's file and the
// policy in it are left alone: enrolling again replaces only this file.
func SaveEnrollment(path string, fc FileConfig) error {
	part := FileConfig{Server: fc.Server, CAFingerprint: fc.CAFingerprint, Group: fc.Group, StateDir: fc.StateDir, Root: fc.Root}
	dir := DropInDir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := yaml.Marshal(part)
	if err != nil {
		return err
	}
	head := []byte("# Written by `bulwark agent enroll`; enrolling again replaces it.\n# Set the policy in " + path + " or another drop-in here, not in this file.\n")
	return atomicfile.WriteFile(filepath.Join(dir, EnrollmentFile), append(head, b...), 0o644)
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
		if s.Interval, err = policy.ParseInterval(s.DetectionInterval); err != nil {
			return nil, fmt.Errorf("detection_interval %w", err)
		}
	}
	switch fc.Download {
	case "", policy.DownloadBackground:
		s.Download = fetch.Background
	case policy.DownloadForeground:
		s.Download = fetch.Foreground
	default:
		return nil, fmt.Errorf("download %q: use background or foreground", fc.Download)
	}
	if fc.BandwidthLimit != "" && fc.BandwidthLimit != policy.NoLimit {
		if s.Rate, err = ParseRate(fc.BandwidthLimit); err != nil {
			return nil, fmt.Errorf("bandwidth_limit: %w", err)
		}
	}
	if fc.MetricsTextfile != "" {
		if err := CheckTextfilePath(fc.MetricsTextfile); err != nil {
			return nil, err
		}
	}
	if len(fc.VendorPins) > 0 {
		if s.VendorPins, err = tuf.CheckVendorPins("vendor_pins", fc.VendorPins); err != nil {
			return nil, err
		}
	}
	if fc.LockdownProfile != "" {
		cat, err := lockdown.LoadCatalog()
		if err != nil {
			return nil, err
		}
		if _, ok := cat.Profile(fc.LockdownProfile); !ok {
			var names []string
			for _, p := range cat.Profiles() {
				names = append(names, p.Name)
			}
			return nil, fmt.Errorf("lockdown_profile %q: use one of %s (`bulwark lockdown list`)", fc.LockdownProfile, strings.Join(names, ", "))
		}
	}
	if fc.Server != "" && !strings.HasPrefix(fc.Server, "https://") {
		return nil, fmt.Errorf("server %q: use an https:// URL; the agent never talks to its server in the clear", fc.Server)
	}
	return s, nil
}

// ParseRate reads a bandwidth such as "2mbit", "500kbit", "1MB" or "64KiB"
// (per second) and returns bytes per second.
func ParseRate(v string) (int64, error) { return policy.ParseRate(v) }

// WithGroup applies a group policy (nil: none) over this configuration by
// the precedence of package policy, checks the result and says where each
// setting comes from. The configuration itself is not changed.
func (fc FileConfig) WithGroup(g *policy.Group) (*Settings, error) {
	b, err := yaml.Marshal(fc)
	if err != nil {
		return nil, err
	}
	m := map[string]any{}
	if err := yaml.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	local := map[string]string{}
	for _, k := range policy.Keys() {
		if v, ok := m[k].(string); ok {
			local[k] = v
		}
		delete(m, k)
	}
	values, from := policy.Resolve(g, local)
	fromGroup := map[string]string{}
	for k, v := range values {
		if from[k] == policy.FromGroup {
			fromGroup[k] = v
		}
	}
	// Only the group's settings are written over a copy: every other key
	// (reboot_command: [] included) stays exactly as agent.yaml has it.
	if b, err = yaml.Marshal(fromGroup); err != nil {
		return nil, err
	}
	merged := fc
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&merged); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("group policy: %w", err)
	}
	s, err := merged.Check()
	if err != nil {
		return nil, err
	}
	s.From, s.Values = from, values
	return s, nil
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
