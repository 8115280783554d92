// Package policy is the update policy's vocabulary, shared by the agent and
// the update server: the settings an agent follows (mode, auto-install
// severity, maintenance window, check-in interval, bandwidth limit, download
// mode), parsed and checked the same way whether they come from the
// machine's agent.yaml or from the central policy of its computer group
// that the server delivers at every check-in, and the precedence between
// the two.
//
// Precedence, setting by setting: a setting the group policy leaves unset
// comes from agent.yaml (or its default); a setting the group policy sets
// wins over agent.yaml, unless the group policy lists it in allow_local and
// agent.yaml sets it, in which case agent.yaml wins.
//
// A group policy holds only settings that decide when and how approved
// updates are fetched and installed; what may be installed is decided by
// the signed approvals alone, and machine-local settings (server, root,
// state directory, reboot command, socket) never come from the server.
//
// To add a setting: a field in Group (JSON name = the agent.yaml key), one
// entry in Fields, and the same key in the agent's configuration.
//
// It must not do I/O.
package policy

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/bulwarkhq/bulwark/internal/catalog"
)

// Group is a computer group's central policy. Every setting is a string in
// agent.yaml's vocabulary; "" leaves it to agent.yaml.
type Group struct {
	Mode                string `json:"mode,omitempty"`
	AutoInstallSeverity string `json:"auto_install_severity,omitempty"`
	MaintenanceWindow   string `json:"maintenance_window,omitempty"`
	DetectionInterval   string `json:"detection_interval,omitempty"`
	BandwidthLimit      string `json:"bandwidth_limit,omitempty"`
	Download            string `json:"download,omitempty"`
	// AllowLocal lists the settings agent.yaml may override.
	AllowLocal []string `json:"allow_local,omitempty"`
	// Lockdown is a lockdown profile the group's agents keep applied
	// (nil: none); see lockdown.go.
	Lockdown *Lockdown `json:"lockdown,omitempty"`
}

// Field describes one setting of a group policy.
type Field struct {
	Key     string   // the agent.yaml key and the JSON name
	Title   string   // a short label
	Help    string   // what it does and what is valid
	Choices []string // a closed set of values; nil: free text that Check reads
	Check   func(v string) error
	ptr     func(*Group) *string
}

// Download modes.
const (
	DownloadBackground = "background" // yields to other traffic on the link (the default)
	DownloadForeground = "foreground" // as fast as the source and the bandwidth limit allow
)

// NoLimit is the bandwidth_limit that lifts any limit.
const NoLimit = "none"

// Fields lists every setting, in the order forms and tables show them.
var Fields = []Field{
	{Key: "mode", Title: "Mode", Help: "notify, download, auto or scheduled",
		Choices: modeNames(),
		Check:   func(v string) error { _, err := ParseMode(v); return err },
		ptr:     func(g *Group) *string { return &g.Mode }},
	{Key: "auto_install_severity", Title: "Auto-install severity", Help: "auto and scheduled install by themselves at or above this severity",
		Choices: severityNames(),
		Check:   func(v string) error { _, err := catalog.ParseSeverity(v); return err },
		ptr:     func(g *Group) *string { return &g.AutoInstallSeverity }},
	{Key: "maintenance_window", Title: "Maintenance window", Help: `scheduled mode installs only inside it, e.g. "sat,sun 02:00-05:00" or "daily 23:00-01:00" (machine's local time)`,
		Check: func(v string) error { _, err := ParseWindow(v); return err },
		ptr:   func(g *Group) *string { return &g.MaintenanceWindow }},
	{Key: "detection_interval", Title: "Check-in interval", Help: "how often agents check in, e.g. 22h (at least 1m)",
		Check: func(v string) error {
			if _, err := ParseInterval(v); err != nil {
				return fmt.Errorf("detection_interval %w", err)
			}
			return nil
		},
		ptr: func(g *Group) *string { return &g.DetectionInterval }},
	{Key: "bandwidth_limit", Title: "Bandwidth limit", Help: "download rate cap per agent, e.g. 2mbit or 500KiB; none lifts a limit",
		Check: func(v string) error {
			if v == NoLimit {
				return nil
			}
			_, err := ParseRate(v)
			return err
		},
		ptr: func(g *Group) *string { return &g.BandwidthLimit }},
	{Key: "download", Title: "Scheduled downloads", Help: "background (yield to other traffic) or foreground (full speed up to the bandwidth limit)",
		Choices: []string{DownloadBackground, DownloadForeground},
		ptr:     func(g *Group) *string { return &g.Download }},
}

func modeNames() []string {
	var s []string
	for _, m := range Modes {
		s = append(s, string(m))
	}
	return s
}

func severityNames() []string {
	return []string{string(catalog.SeverityCritical), string(catalog.SeverityImportant), string(catalog.SeverityModerate), string(catalog.SeverityLow), string(catalog.SeverityUnspecified)}
}

// Keys lists every setting's key.
func Keys() []string {
	var ks []string
	for _, f := range Fields {
		ks = append(ks, f.Key)
	}
	return ks
}

// FieldByKey finds a setting.
func FieldByKey(key string) (Field, bool) {
	for _, f := range Fields {
		if f.Key == key {
			return f, true
		}
	}
	return Field{}, false
}

// CheckValue checks one value of a setting ("" is always valid: unset).
func (f Field) CheckValue(v string) error {
	if v == "" {
		return nil
	}
	if f.Choices != nil && !slices.Contains(f.Choices, v) {
		return fmt.Errorf("%s %q: use one of %s", f.Key, v, strings.Join(f.Choices, ", "))
	}
	if f.Check != nil {
		if err := f.Check(v); err != nil {
			return err
		}
	}
	return nil
}

// Value is the group's value of a setting ("" when unset or unknown).
func (g *Group) Value(key string) string {
	if f, ok := FieldByKey(key); ok {
		return *f.ptr(g)
	}
	return ""
}

// Set sets one setting after checking it; "" unsets it.
func (g *Group) Set(key, v string) error {
	f, ok := FieldByKey(key)
	if !ok {
		return unknownKey(key)
	}
	v = strings.TrimSpace(v)
	if err := f.CheckValue(v); err != nil {
		return err
	}
	*f.ptr(g) = v
	return nil
}

func unknownKey(key string) error {
	return fmt.Errorf("policy setting %q: use one of %s", key, strings.Join(Keys(), ", "))
}

// Values maps every set setting to its value.
func (g *Group) Values() map[string]string {
	m := map[string]string{}
	for _, f := range Fields {
		if v := *f.ptr(g); v != "" {
			m[f.Key] = v
		}
	}
	return m
}

// Empty reports whether the policy sets nothing and allows nothing.
func (g *Group) Empty() bool {
	return len(g.Values()) == 0 && len(g.AllowLocal) == 0 && g.Lockdown == nil
}

// Allows reports whether agent.yaml may override key.
func (g *Group) Allows(key string) bool { return slices.Contains(g.AllowLocal, key) }

// Check validates every setting, and sorts and deduplicates AllowLocal. A
// scheduled mode needs the maintenance window set in the same policy.
func (g *Group) Check() error {
	for _, f := range Fields {
		if err := f.CheckValue(*f.ptr(g)); err != nil {
			return err
		}
	}
	for _, k := range g.AllowLocal {
		if _, ok := FieldByKey(k); !ok {
			return fmt.Errorf("allow_local: %w", unknownKey(k))
		}
	}
	sort.Strings(g.AllowLocal)
	g.AllowLocal = slices.Compact(g.AllowLocal)
	if g.Lockdown != nil {
		if err := g.Lockdown.Check(); err != nil {
			return err
		}
	}
	if g.Mode == string(ModeScheduled) && g.MaintenanceWindow == "" {
		return fmt.Errorf("mode scheduled: set maintenance_window in the same policy, e.g. \"sat,sun 02:00-05:00\"")
	}
	return nil
}

// Where a setting's effective value comes from.
const (
	FromGroup   = "group"   // the group policy
	FromLocal   = "local"   // agent.yaml
	FromDefault = "default" // neither sets it
)

// Resolve merges a group policy (nil: none) over the settings agent.yaml
// gives (key → value, "" or absent when unset) by the precedence in the
// package comment. It returns the merged values of every setting that has
// one and, for every setting, where its value comes from.
func Resolve(g *Group, local map[string]string) (values, from map[string]string) {
	values, from = map[string]string{}, map[string]string{}
	for _, f := range Fields {
		lv := local[f.Key]
		gv := ""
		if g != nil {
			gv = *f.ptr(g)
		}
		switch {
		case gv != "" && (lv == "" || !g.Allows(f.Key)):
			values[f.Key], from[f.Key] = gv, FromGroup
		case lv != "":
			values[f.Key], from[f.Key] = lv, FromLocal
		default:
			from[f.Key] = FromDefault
		}
	}
	return values, from
}
