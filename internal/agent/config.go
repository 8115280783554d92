package agent

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/bulwarkhq/bulwark/internal/atomicfile"
	"github.com/bulwarkhq/bulwark/internal/catalog"
	"github.com/bulwarkhq/bulwark/internal/config"
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
	// Log is the daemon's logging: level debug|info|warn|error, format
	// text|json.
	Log LogConfig `yaml:"log,omitempty"`
}

// LogConfig is the log key of agent.yaml.
type LogConfig struct {
	Level  string `yaml:"level,omitempty"`
	Format string `yaml:"format,omitempty"`
}

// Settings are a FileConfig checked and with defaults applied.
type Settings struct {
	FileConfig
	// Local is the configuration as the files, variables and flags set it,
	// without defaults: what a group policy is applied over (a default is
	// not a local setting, so it never beats the group's).
	Local    FileConfig
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
func DropInDir(path string) string { return config.DropInDir(path) }

// ConfigFiles lists the files a configuration at path is read from: path
// itself when it exists, then the drop-ins in lexical order.
func ConfigFiles(path string) ([]string, error) {
	files, err := config.Files(path, false)
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%w: neither %s nor %s/*.yaml", os.ErrNotExist, path, DropInDir(path))
	}
	return files, nil
}

// checkString adapts a string parser to a config.Setting's Check.
func checkString(parse func(string) error) func(any) error {
	return func(v any) error { return parse(v.(string)) }
}

// Table is every setting of the agent, each once: its key in agent.yaml,
// its flag (of `bulwark agent run`), its variable, its default and its
// help. The server part (server, ca_fingerprint, group) is enrollment's
// and has no flag or variable. The defaults are applied by Check, under a
// group policy (a setting the file, a variable or a flag sets is local;
// a default is not), so Load leaves them out.
var Table = config.Table{
	{Key: "server", Help: "the update server, https://host:8443 (written by bulwark agent enroll)",
		Check: checkString(func(s string) error {
			if !strings.HasPrefix(s, "https://") {
				return errors.New("use an https:// URL; the agent never talks to its server in the clear")
			}
			return nil
		})},
	{Key: "ca_fingerprint", Help: "sha256:… of the site CA pinned at enrollment"},
	{Key: "group", Help: "the computer group asked for (the server decides)"},
	{Key: "state_dir", Flag: "state-dir", Env: "BULWARK_AGENT_STATE_DIR", Default: "/var/lib/bulwark", Help: "state directory (0700)"},
	{Key: "root", Flag: "root", Env: "BULWARK_AGENT_ROOT", Default: "/", Help: "the root this agent manages (a directory for golden images and tests)"},
	{Key: "mode", Flag: "mode", Env: "BULWARK_AGENT_MODE", Default: string(ModeDownload), Help: "policy: notify, download, auto or scheduled",
		Check: checkString(func(s string) error { _, err := ParseMode(s); return err })},
	{Key: "auto_install_severity", Flag: "auto-install-severity", Env: "BULWARK_AGENT_AUTO_INSTALL_SEVERITY", Default: string(catalog.SeverityImportant),
		Help:  "auto and scheduled: install by itself at or above this severity",
		Check: checkString(func(s string) error { _, err := catalog.ParseSeverity(s); return err })},
	{Key: "maintenance_window", Flag: "maintenance-window", Env: "BULWARK_AGENT_MAINTENANCE_WINDOW", Help: `scheduled: when to install, e.g. "sat,sun 02:00-05:00"`,
		Check: checkString(func(s string) error { _, err := ParseWindow(s); return err })},
	{Key: "detection_interval", Flag: "detection-interval", Env: "BULWARK_AGENT_DETECTION_INTERVAL", Default: "22h", Help: "time between check-ins (plus jitter), e.g. 6h",
		Check: checkString(func(s string) error { _, err := policy.ParseInterval(s); return err })},
	{Key: "bandwidth_limit", Flag: "bandwidth-limit", Env: "BULWARK_AGENT_BANDWIDTH_LIMIT", Help: "background downloads at most this fast, e.g. 2mbit, 500kbit or 1MB (per second); none: no limit",
		Check: checkString(func(s string) error {
			if s == policy.NoLimit {
				return nil
			}
			_, err := ParseRate(s)
			return err
		})},
	{Key: "download", Flag: "download", Env: "BULWARK_AGENT_DOWNLOAD", Default: policy.DownloadBackground, Help: "scheduled downloads: background or foreground",
		Check: checkString(func(s string) error {
			if s != policy.DownloadBackground && s != policy.DownloadForeground {
				return errors.New("use background or foreground")
			}
			return nil
		})},
	{Key: "reboot_command", Kind: config.List, Default: []string{"systemctl", "reboot"}, Help: "the command that reboots; [] never reboots"},
	{Key: "socket", Flag: "socket", Env: "BULWARK_AGENT_SOCKET", Default: DefaultSocket, Help: "the running agent's control socket"},
	{Key: "boot_id_path", Help: "where the boot id is read (default /proc/sys/kernel/random/boot_id)"},
	{Key: "metrics_textfile", Flag: "metrics-textfile", Env: "BULWARK_AGENT_METRICS_TEXTFILE", Help: "a *.prom file for node_exporter's textfile collector, written after each check-in",
		Check: checkString(CheckTextfilePath)},
	{Key: "vendor_pins", Kind: config.Map, Help: "vendor roots pinned on this machine, NAME: sha256:…",
		Check: func(v any) error {
			pins := map[string]string{}
			for k, x := range v.(map[string]any) {
				pins[k] = x.(string)
			}
			_, err := tuf.CheckVendorPins("vendor_pins", pins)
			return err
		}},
	{Key: "lockdown_profile", Flag: "lockdown-profile", Env: "BULWARK_AGENT_LOCKDOWN_PROFILE", Help: "a lockdown profile audited each cycle and reported (audit only)",
		Check: checkString(checkLockdownProfile)},
	{Key: "log.level", Flag: "log-level", Env: "BULWARK_AGENT_LOG_LEVEL", Default: "info", Help: "log level: debug, info, warn, error",
		Check: checkString(func(s string) error {
			var lv slog.Level
			if lv.UnmarshalText([]byte(s)) != nil {
				return errors.New("use debug, info, warn or error")
			}
			return nil
		})},
	{Key: "log.format", Flag: "log-format", Env: "BULWARK_AGENT_LOG_FORMAT", Default: "text", Help: "log format: text or json (under systemd each line carries its journal priority)",
		Check: checkString(func(s string) error {
			if s != "text" && s != "json" {
				return errors.New("use text or json")
			}
			return nil
		})},
}

// Layers are where an agent's settings come from besides its files.
type Layers struct {
	Environ func() []string // BULWARK_AGENT_* variables; nil: none
	Flags   *pflag.FlagSet  // `bulwark agent run`'s flags that were set; nil: none
}

// LoadConfig reads and checks an agent configuration: the file at path and
// its drop-ins (DropInDir), merged in that order. Unknown keys and bad
// values are refused with the file and the key named and what would be
// valid.
func LoadConfig(path string) (*Settings, error) { return Load(path, Layers{}) }

// Load layers and checks an agent's settings: the file at path, its
// drop-ins in lexical order, then the variables, then the flags, each
// overriding what it sets; Check applies the defaults. A bad value is
// refused naming its file and key, its variable or its flag.
func Load(path string, src Layers) (*Settings, error) {
	files, err := ConfigFiles(path)
	if err != nil {
		return nil, fmt.Errorf("agent config: %w", err)
	}
	fc, err := loadFileConfig(files, src)
	if err != nil {
		return nil, err
	}
	s, err := fc.WithGroup(nil)
	if err != nil {
		return nil, fmt.Errorf("agent config %s: %w", strings.Join(files, ", "), err)
	}
	return s, nil
}

func loadFileConfig(files []string, src Layers) (FileConfig, error) {
	var fc FileConfig
	ls, err := Table.Load(config.Sources{Files: files, Environ: src.Environ, Flags: src.Flags, NoDefaults: true})
	if err != nil {
		return fc, fmt.Errorf("agent %w", err)
	}
	if err := ls.Unmarshal(&fc); err != nil {
		return fc, fmt.Errorf("agent config: %w", err)
	}
	return fc, nil
}

// Socket is the control socket the settings of path (when any of its
// files exists) and src name, for the commands that talk to the running
// agent; a configuration that does not load leaves the variable, the flag
// and the default.
func Socket(path string, src Layers) string {
	if files, err := ConfigFiles(path); err == nil {
		if fc, err := loadFileConfig(files, src); err == nil && fc.Socket != "" {
			return fc.Socket
		}
	}
	if fc, err := loadFileConfig(nil, src); err == nil && fc.Socket != "" {
		return fc.Socket
	}
	return DefaultSocket
}

// Values are the settings of path and src as Load layers them, with the
// defaults, each with where it comes from (`bulwark agent config`); they
// are checked as Load checks them.
func Values(path string, src Layers) ([]config.Value, error) {
	if _, err := Load(path, src); err != nil {
		return nil, err
	}
	files, err := ConfigFiles(path)
	if err != nil {
		return nil, err
	}
	ls, err := Table.Load(config.Sources{Files: files, Environ: src.Environ, Flags: src.Flags})
	if err != nil {
		return nil, fmt.Errorf("agent %w", err)
	}
	return ls.Values(Table), nil
}

func checkLockdownProfile(name string) error {
	cat, err := lockdown.LoadCatalog()
	if err != nil {
		return err
	}
	if _, ok := cat.Profile(name); ok {
		return nil
	}
	var names []string
	for _, p := range cat.Profiles() {
		names = append(names, p.Name)
	}
	return fmt.Errorf("lockdown_profile %q: use one of %s (`bulwark lockdown list`)", name, strings.Join(names, ", "))
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
	s := &Settings{FileConfig: fc, Local: fc}
	def := func(p *string, key string) {
		if *p == "" {
			*p = Table.Default(key).(string)
		}
	}
	def(&s.StateDir, "state_dir")
	def(&s.Root, "root")
	def(&s.Socket, "socket")
	def(&s.Mode, "mode")
	def(&s.AutoInstallSeverity, "auto_install_severity")
	def(&s.DetectionInterval, "detection_interval")
	def(&s.Log.Level, "log.level")
	def(&s.Log.Format, "log.format")
	if s.RebootCommand == nil {
		s.RebootCommand = slices.Clone(Table.Default("reboot_command").([]string))
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
	if s.Interval, err = policy.ParseInterval(s.DetectionInterval); err != nil {
		return nil, fmt.Errorf("detection_interval %w", err)
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
		if err := checkLockdownProfile(fc.LockdownProfile); err != nil {
			return nil, err
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
	s.From, s.Values, s.Local = from, values, fc
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
