package agent

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// readTextfile parses a metrics textfile with Prometheus's own parser (what
// node_exporter's textfile collector uses) into name → labels → value.
func readTextfile(t *testing.T, p string) map[string]map[string]float64 {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	p2 := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p2.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s does not parse: %v\n%s", p, err, b)
	}
	out := map[string]map[string]float64{}
	for name, f := range fams {
		if f.GetType() != dto.MetricType_GAUGE {
			t.Errorf("%s is a %v, want a gauge", name, f.GetType())
		}
		out[name] = map[string]float64{}
		for _, m := range f.Metric {
			var key string
			for _, l := range m.Label {
				key += l.GetName() + "=" + l.GetValue() + ","
			}
			out[name][key] = m.Gauge.GetValue()
		}
	}
	return out
}

// TestTextfileMetrics runs check-ins against a world with two approved
// critical updates in download mode and reads the textfile after each: the
// pending updates by severity, a failed check-in that does not move the
// last success, then a successful one that does.
func TestTextfileMetrics(t *testing.T) {
	w := newWorld(t)
	w.publish("BW-1", "", map[string]string{"a.deb": "a"})
	w.publish("BW-2", "", map[string]string{"b.deb": "b"})
	w.approve("web", "BW-1", "BW-2")
	a, err := Open(Config{StateDir: filepath.Join(t.TempDir(), "state"), Now: w.clock, Policy: Policy{Mode: ModeDownload},
		Handlers: func(string) (Handler, error) { return &reader{got: map[string]string{}}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	prom := filepath.Join(t.TempDir(), "bulwark.prom")
	rep := &memReporter{got: map[int64]Event{}, fail: true}
	d := &Daemon{Agent: a, Sources: w.sources(t.TempDir()), Reporter: rep, Options: CycleOptions{AgentID: "agent-1", Facts: debian12},
		Textfile: prom, AgentVersion: "1.2.3"}
	notAfter := time.Date(2027, 11, 30, 0, 0, 0, 0, time.UTC)
	d.SetCertValidity(notAfter.Add(-365*24*time.Hour), notAfter)

	if err := d.CheckIn(context.Background()); err == nil {
		t.Fatal("check-in with the server down reported no error")
	}
	m := readTextfile(t, prom)
	if got := m["bulwark_agent_updates_pending"]["severity=critical,"]; got != 2 {
		t.Errorf("pending critical = %v, want 2 (all: %v)", got, m["bulwark_agent_updates_pending"])
	}
	if got, ok := m["bulwark_agent_updates_pending"]["severity=low,"]; !ok || got != 0 {
		t.Errorf("pending low = %v (present %v), want a 0 series", got, ok)
	}
	if got := m["bulwark_agent_last_checkin_success_timestamp_seconds"][""]; got != 0 {
		t.Errorf("last success %v after a failed check-in, want 0", got)
	}
	if got := m["bulwark_agent_last_checkin_timestamp_seconds"][""]; got == 0 {
		t.Error("the failed check-in left no last check-in time")
	}
	if got := m["bulwark_agent_certificate_expiry_timestamp_seconds"][""]; got != float64(notAfter.Unix()) {
		t.Errorf("certificate expiry %v, want %v", got, notAfter.Unix())
	}
	if got := m["bulwark_agent_reboot_required"][""]; got != 0 {
		t.Errorf("reboot required %v", got)
	}
	if got := m["bulwark_agent_info"]["agent_id=agent-1,group=web,version=1.2.3,mode=download,"]; got != 1 {
		t.Errorf("info: %v", m["bulwark_agent_info"])
	}

	rep.fail = false
	if err := d.CheckIn(context.Background()); err != nil {
		t.Fatal(err)
	}
	m = readTextfile(t, prom)
	if got := m["bulwark_agent_last_checkin_success_timestamp_seconds"][""]; got != float64(w.clock().UnixMilli())/1000 {
		t.Errorf("last success %v, want the check-in's time %v", got, w.clock())
	}
	if fi, err := os.Stat(prom); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("textfile mode: %v %v, want 0644 for node_exporter", fi, err)
	}
}

// TestTextfileLabelsEscaped: a group name with a quote or newline (from the
// server) cannot break the file.
func TestTextfileLabelsEscaped(t *testing.T) {
	b := Textfile(Status{AgentID: "a", Group: "we\"b\nx\\"}, nil, "v")
	p := expfmt.NewTextParser(model.UTF8Validation)
	if _, err := p.TextToMetricFamilies(bytes.NewReader(b)); err != nil {
		t.Fatalf("does not parse: %v\n%s", err, b)
	}
}

func TestTextfilePathChecked(t *testing.T) {
	for _, p := range []string{"bulwark.prom", "/var/lib/prometheus/node-exporter/bulwark.txt"} {
		if CheckTextfilePath(p) == nil {
			t.Errorf("%q accepted", p)
		}
	}
	if err := CheckTextfilePath("/var/lib/prometheus/node-exporter/bulwark.prom"); err != nil {
		t.Error(err)
	}
}
