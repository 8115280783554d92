package agent

import (
	"bytes"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/internal/atomicfile"
	"github.com/bulwarkhq/bulwark/internal/catalog"
)

// The agent's metrics for node_exporter's textfile collector, in the way of
// apt's textfile exporter (apt_upgrades_pending, node_reboot_required): the
// agent writes metrics_textfile (a *.prom file in the collector's
// directory, e.g. /var/lib/prometheus/node-exporter/bulwark.prom) after
// every check-in and at start, in one atomic rename, so the collector never
// reads half a file. The Prometheus client library is not used: the lean
// agent build links none of the server's metrics packages, and the text
// format of a few gauges is short.

// pendingSeverities are reported even at zero, so that an alert on one
// severity has a series to compare.
var pendingSeverities = []catalog.Severity{catalog.SeverityCritical, catalog.SeverityImportant,
	catalog.SeverityModerate, catalog.SeverityLow, catalog.SeverityUnspecified}

// Textfile renders the agent's metrics in the Prometheus text format.
func Textfile(st Status, updates []UpdateRecord, version string) []byte {
	pending := map[string]int{}
	for _, s := range pendingSeverities {
		pending[string(s)] = 0
	}
	failed := 0
	for _, u := range updates {
		switch u.State {
		case StateNeeded, StateDownloaded:
			sev := u.Severity
			if sev == "" {
				sev = string(catalog.SeverityUnspecified)
			}
			pending[sev]++
		case StateFailed:
			failed++
		}
	}
	var b bytes.Buffer
	gauge := func(name, help string) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name)
	}
	seconds := func(t time.Time) string {
		if t.IsZero() {
			return "0"
		}
		return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', -1, 64)
	}
	gauge("bulwark_agent_info", "Always 1; the labels name the agent, its group and its version.")
	fmt.Fprintf(&b, "bulwark_agent_info{agent_id=%s,group=%s,version=%s,mode=%s} 1\n", label(st.AgentID), label(st.Group), label(version), label(string(st.Mode)))
	gauge("bulwark_agent_updates_pending", "Approved updates that apply to this machine and are not installed yet (needed or downloaded), by severity.")
	sevs := make([]string, 0, len(pending))
	for s := range pending {
		sevs = append(sevs, s)
	}
	slices.Sort(sevs)
	for _, s := range sevs {
		fmt.Fprintf(&b, "bulwark_agent_updates_pending{severity=%s} %d\n", label(s), pending[s])
	}
	gauge("bulwark_agent_updates_failed", "Approved updates whose last install or download failed.")
	fmt.Fprintf(&b, "bulwark_agent_updates_failed %d\n", failed)
	gauge("bulwark_agent_reboot_required", "1 when installed updates wait for a reboot to finish.")
	reboot := 0
	if st.PendingReboot {
		reboot = 1
	}
	fmt.Fprintf(&b, "bulwark_agent_reboot_required %d\n", reboot)
	gauge("bulwark_agent_last_checkin_timestamp_seconds", "When the agent last checked in, successfully or not (Unix seconds; 0: not yet).")
	fmt.Fprintf(&b, "bulwark_agent_last_checkin_timestamp_seconds %s\n", seconds(st.LastCheckIn))
	gauge("bulwark_agent_last_checkin_success_timestamp_seconds", "When a check-in last succeeded (Unix seconds; 0: not since the agent started).")
	fmt.Fprintf(&b, "bulwark_agent_last_checkin_success_timestamp_seconds %s\n", seconds(st.LastCheckInOK))
	gauge("bulwark_agent_certificate_expiry_timestamp_seconds", "When the agent's client certificate expires (Unix seconds); it renews at two thirds of its lifetime.")
	fmt.Fprintf(&b, "bulwark_agent_certificate_expiry_timestamp_seconds %s\n", seconds(st.CertNotAfter))
	return b.Bytes()
}

// label quotes a label value in the text format's escaping.
func label(v string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`).Replace(v) + `"`
}

// CheckTextfilePath refuses a metrics_textfile node_exporter would ignore.
func CheckTextfilePath(p string) error {
	if !filepath.IsAbs(p) || filepath.Ext(p) != ".prom" {
		return fmt.Errorf("metrics_textfile %q: use an absolute path ending in .prom in node_exporter's textfile directory, e.g. /var/lib/prometheus/node-exporter/bulwark.prom", p)
	}
	return nil
}

// WriteTextfile writes the daemon's metrics to its textfile, when it has
// one (0644: node_exporter reads it as its own user).
func (d *Daemon) WriteTextfile() error {
	if d.Textfile == "" {
		return nil
	}
	return atomicfile.WriteFile(d.Textfile, Textfile(d.Status(), d.Updates(), d.AgentVersion), 0o644)
}
