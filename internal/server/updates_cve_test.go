package server

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/wire"
)

// TestUpdatesByCVEAndNeededBy: the update list finds updates by a CVE they
// fix (exact id, any case), shows how many computers need each (needed,
// downloaded or failed), and filters by that count; bad filter values are
// refused naming what is valid.
func TestUpdatesByCVEAndNeededBy(t *testing.T) {
	ctx := context.Background()
	v := newVendorRepo(t, "example")
	v.publishWith(t, "BW-1", "critical", map[string]string{"a.txt": "a"}, "cves: [CVE-2026-1111, CVE-2026-2222]\n")
	v.publishWith(t, "BW-2", "low", map[string]string{"b.txt": "b"}, "cves: [CVE-2026-3333]\n")
	v.publish(t, "BW-3", "moderate", map[string]string{"c.txt": "c"})
	ts := startServer(t, Config{Vendors: []HostedVendor{{Name: "example", Dir: v.dir}}})
	if _, err := ts.SyncAll(ctx, "", "manual"); err != nil {
		t.Fatal(err)
	}
	ts.admin("POST", "/api/v1/groups", GroupRequest{Name: "web"}, http.StatusCreated)
	tok := ts.newToken(TokenRequest{Kind: "enroll", Group: "web", MaxUses: 3})
	states := map[string]map[string]string{
		"11111111111111111111111111111111": {"example/BW-1": "needed", "example/BW-2": "installed"},
		"22222222222222222222222222222222": {"example/BW-1": "failed", "example/BW-3": "downloaded"},
		"33333333333333333333333333333333": {"example/BW-1": "installed", "example/BW-3": "not-applicable"},
	}
	for m, st := range states {
		a := ts.enroll(tok, m, "")
		var ch []wire.StateChange
		for k, s := range st {
			ch = append(ch, wire.StateChange{Key: k, State: s, Time: time.Now().UTC()})
		}
		if code, b, _ := ts.agentDo(a, a.client, "POST", "/agent/v1/report", wire.ReportRequest{BatchID: "b-" + m, Changes: ch}, nil); code != http.StatusOK {
			t.Fatalf("report: %d %s", code, b)
		}
	}
	list := func(q string) map[string]UpdateView {
		t.Helper()
		var r struct{ Updates []UpdateView }
		json.Unmarshal(ts.admin("GET", "/api/v1/updates"+q, nil, http.StatusOK), &r)
		out := map[string]UpdateView{}
		for _, u := range r.Updates {
			out[u.ID] = u
		}
		return out
	}
	all := list("")
	if all["BW-1"].NeededBy != 2 || all["BW-2"].NeededBy != 0 || all["BW-3"].NeededBy != 1 || strings.Join(all["BW-1"].CVEs, ",") != "CVE-2026-1111,CVE-2026-2222" {
		t.Fatalf("updates: %+v", all)
	}
	for q, want := range map[string]string{
		"?cve=CVE-2026-2222":              "BW-1",
		"?cve=cve-2026-1111":              "BW-1",
		"?cve=CVE-2026-3333":              "BW-2",
		"?cve=CVE-2026-11110":             "",
		"?needed_min=1":                   "BW-1,BW-3",
		"?needed_min=2":                   "BW-1",
		"?needed_min=3":                   "",
		"?cve=CVE-2026-3333&needed_min=1": "",
		"?severity=critical&needed_min=0": "BW-1",
	} {
		var ids []string
		for _, id := range []string{"BW-1", "BW-2", "BW-3"} {
			if _, ok := list(q)[id]; ok {
				ids = append(ids, id)
			}
		}
		if got := strings.Join(ids, ","); got != want {
			t.Errorf("%s: %q, want %q", q, got, want)
		}
	}
	for q, want := range map[string]string{
		"?cve=CVE-2026-111":  "use a CVE id such as CVE-2026-1234",
		"?cve=%25":           "use a CVE id",
		"?needed_min=lots":   "needed_min \\\"lots\\\": use a whole number",
		"?needed_min=-2":     "use a whole number of computers, 0 or more",
		"?cve_id=CVE-2026-1": "use vendor, product, classification, severity, cve, needed_min",
	} {
		if b := ts.admin("GET", "/api/v1/updates"+q, nil, http.StatusBadRequest); !strings.Contains(string(b), want) {
			t.Errorf("%s: %s, want %q", q, b, want)
		}
	}
}
