package storetest

import (
	"context"
	"strings"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/server"
	"github.com/bulwarkhq/bulwark/internal/store"
)

// testUpdateCVEs: an update's CVEs are stored and read back in order, and
// the CVE filter matches an id exactly (not a prefix or a part of one).
func testUpdateCVEs(t *testing.T, s server.Store) {
	ctx := context.Background()
	must(t, s.UpsertUpdates(ctx, []store.Update{
		{Vendor: "v", ID: "u1", Title: "one", Severity: "critical", SHA256: "a", CVEs: []string{"CVE-2026-1111", "CVE-2026-22222"}, IndexedAt: t0},
		{Vendor: "v", ID: "u2", Title: "two", Severity: "low", SHA256: "b", CVEs: []string{"CVE-2026-2222"}, IndexedAt: t0},
		{Vendor: "v", ID: "u3", Title: "three", Severity: "low", SHA256: "c", IndexedAt: t0},
	}))
	u, err := s.GetUpdate(ctx, "v", "u1")
	must(t, err)
	if strings.Join(u.CVEs, ",") != "CVE-2026-1111,CVE-2026-22222" {
		t.Fatalf("CVEs = %v", u.CVEs)
	}
	for cve, want := range map[string]string{"CVE-2026-1111": "u1", "CVE-2026-2222": "u2", "CVE-2026-22222": "u1", "CVE-2026-111": "", "": "u1,u2,u3"} {
		us, err := s.ListUpdates(ctx, store.UpdateFilter{CVE: cve})
		must(t, err)
		var ids []string
		for _, u := range us {
			ids = append(ids, u.ID)
		}
		if got := strings.Join(ids, ","); got != want {
			t.Errorf("CVE %q: %q, want %q", cve, got, want)
		}
	}
	// Indexed again without CVEs: none are left.
	must(t, s.UpsertUpdates(ctx, []store.Update{{Vendor: "v", ID: "u1", Title: "one", Severity: "critical", SHA256: "d", IndexedAt: t0}}))
	if u, _ := s.GetUpdate(ctx, "v", "u1"); len(u.CVEs) != 0 {
		t.Fatalf("CVEs after re-index without any: %v", u.CVEs)
	}
}
