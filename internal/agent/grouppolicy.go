package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"time"

	"golang.org/x/time/rate"

	"github.com/bulwarkhq/bulwark/internal/atomicfile"
	"github.com/bulwarkhq/bulwark/internal/fetch"
	"github.com/bulwarkhq/bulwark/internal/policy"
)

// groupPolicyFile, in the state directory, keeps the last group policy the
// server delivered, so that an agent restarted while its server is
// unreachable follows it, not agent.yaml alone.
const groupPolicyFile = "group-policy.json"

// Setting is one policy setting in effect and where it comes from
// (policy.FromGroup, FromLocal or FromDefault).
type Setting struct {
	Key   string `json:"key"`
	Value string `json:"value,omitempty"`
	From  string `json:"from"`
}

// policyState is the daemon's view of its policy: agent.yaml, the group
// policy from the server, and the settings in effect from both.
type policyState struct {
	local    FileConfig
	group    *policy.Group
	eff      *Settings
	limiter  *rate.Limiter // shared with the fetcher; its rate follows bandwidth_limit
	stateDir string
}

// SetLocal replaces agent.yaml's settings (SIGHUP re-reads the file) and
// applies them under the group policy. A running cycle finishes under the
// old settings.
func (d *Daemon) SetLocal(fc FileConfig) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.applyPolicy(fc, d.pol.group)
}

// SetGroupPolicy applies the policy the server delivered for this computer's
// group (nil: none) at a check-in and keeps it in the state directory. A
// policy that cannot apply over agent.yaml (say, it makes agent.yaml's
// settings invalid) is refused and logged; the agent keeps what it has.
func (d *Daemon) SetGroupPolicy(g *policy.Group) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if g != nil && g.Empty() {
		g = nil
	}
	if reflect.DeepEqual(g, d.pol.group) {
		return nil
	}
	if err := d.applyPolicy(d.pol.local, g); err != nil {
		return err
	}
	if d.pol.stateDir == "" {
		return nil
	}
	p := filepath.Join(d.pol.stateDir, groupPolicyFile)
	if g == nil {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	}
	b, err := json.Marshal(g)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(p, append(b, '\n'), 0o600)
}

// loadGroupPolicy reads the group policy kept in the state directory; none
// (or one that no longer checks) is nil.
func loadGroupPolicy(stateDir string) (*policy.Group, error) {
	b, err := os.ReadFile(filepath.Join(stateDir, groupPolicyFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var g policy.Group
	if err := json.Unmarshal(b, &g); err != nil {
		return nil, fmt.Errorf("%s: %w", groupPolicyFile, err)
	}
	if err := g.Check(); err != nil {
		return nil, fmt.Errorf("%s: %w", groupPolicyFile, err)
	}
	return &g, nil
}

// applyPolicy resolves the settings in effect and applies them: install
// policy, download mode of scheduled cycles, bandwidth limit and check-in
// interval. d.mu is held.
func (d *Daemon) applyPolicy(local FileConfig, g *policy.Group) error {
	s, err := local.WithGroup(g)
	if err != nil {
		return fmt.Errorf("policy: %w", err)
	}
	old := d.pol.eff
	d.statusMu.Lock()
	d.pol.local, d.pol.group, d.pol.eff = local, g, s
	d.Agent.cfg.Policy = s.Policy
	d.statusMu.Unlock()
	d.Options.Download.Mode = s.Download
	if d.pol.limiter != nil {
		if s.Rate > 0 {
			d.pol.limiter.SetBurst(burstFor(s.Rate))
			d.pol.limiter.SetLimit(rate.Limit(s.Rate))
		} else {
			d.pol.limiter.SetLimit(rate.Inf)
		}
	}
	if old != nil && !reflect.DeepEqual(settingsOf(old), settingsOf(s)) {
		d.Agent.log.Info("policy changed", "mode", s.Policy.Mode, "settings", settingsOf(s))
	}
	return nil
}

// burstFor is the limiter burst for a rate: 1/20 s of data (16 KiB to
// 256 KiB); a full second's burst overshoots a short download by 10%
// (bench/fetch).
func burstFor(r int64) int { return int(min(max(r/20, 16<<10), 256<<10)) }

func settingsOf(s *Settings) []Setting {
	var out []Setting
	for _, k := range policy.Keys() {
		out = append(out, Setting{Key: k, Value: effectiveValue(s, k), From: s.From[k]})
	}
	return out
}

// effectiveValue shows a setting as the agent applies it, defaults filled
// in.
func effectiveValue(s *Settings, key string) string {
	switch key {
	case "mode":
		return string(s.Policy.Mode)
	case "auto_install_severity":
		return string(s.Policy.AutoInstallSeverity)
	case "maintenance_window":
		return s.MaintenanceWindow
	case "detection_interval":
		return s.Interval.String()
	case "bandwidth_limit":
		if s.Rate == 0 {
			return policy.NoLimit
		}
		return s.BandwidthLimit
	case "download":
		if s.Download == fetch.Foreground {
			return policy.DownloadForeground
		}
		return policy.DownloadBackground
	}
	return s.Values[key]
}

// Interval is the check-in interval in effect (the Schedule asks before
// every wait).
func (d *Daemon) Interval() time.Duration {
	d.statusMu.Lock()
	defer d.statusMu.Unlock()
	if d.pol.eff == nil {
		return 0
	}
	return d.pol.eff.Interval
}

func (d *Daemon) policy() Policy {
	d.statusMu.Lock()
	defer d.statusMu.Unlock()
	return d.Agent.cfg.Policy
}
