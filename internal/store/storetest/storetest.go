// Package storetest is the conformance suite every server.Store backend
// runs (SQLite and PostgreSQL), so backends agree on behaviour and not
// only on method signatures.
//
// It must not depend on any one backend: it sees a store only through
// server.Store and the store package's records and errors.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/server"
	"github.com/bulwarkhq/bulwark/internal/store"
)

// Run runs every conformance test against fresh stores from open.
func Run(t *testing.T, open func(t testing.TB) server.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s server.Store)
	}{
		{"Tokens", testTokens},
		{"TokenUses", testTokenUses},
		{"EnrollAgents", testEnrollAgents},
		{"LastAdminTokenConcurrent", testLastAdminConcurrent},
		{"Groups", testGroups},
		{"Approvals", testApprovals},
		{"Agents", testAgents},
		{"AgentCertRenewal", testAgentCertRenewal},
		{"ReportsIdempotent", testReports},
		{"ReportsOutOfOrder", testReportsOrder},
		{"ReportsConcurrent", testReportsConcurrent},
		{"ReportsGrouped", testReportsGrouped},
		{"ReportsGroupedMixed", testReportsGroupedMixed},
		{"ReportsManyChanges", testReportsManyChanges},
		{"ReportsLastSeen", testReportsLastSeen},
		{"ReportsGroupFigures", testReportsGroupFigures},
		{"Updates", testUpdates},
		{"Syncs", testSyncs},
		{"Prune", testPrune},
		{"PruneEvents", testPruneEvents},
		{"UsersSessions", testUsersSessions},
		{"UserAccess", testUserAccess},
		{"Audit", testAudit},
		{"Compliance", testCompliance},
		{"GroupPolicies", testGroupPolicies},
		{"Rollouts", testRollouts},
		{"UpdateCVEs", testUpdateCVEs},
		{"Lockdown", testLockdown},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() { s.Close() })
			tc.fn(t, s)
		})
	}
}

var t0 = time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t testing.TB, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error = %v, want %v", err, want)
	}
}

func testTokens(t *testing.T, s server.Store) {
	ctx := context.Background()
	exp := t0.Add(time.Hour)
	a := &store.Token{ID: "t1", Kind: store.KindAPI, Name: "ops", Hash: "h1", Role: store.RoleAdmin, CreatedAt: t0}
	e := &store.Token{ID: "t2", Kind: store.KindEnroll, Hash: "h2", Group: "web", ClientGroup: true, MaxUses: 3, ExpiresAt: &exp, CreatedAt: t0.Add(time.Second)}
	must(t, s.CreateToken(ctx, a))
	must(t, s.CreateToken(ctx, e))
	wantErr(t, s.CreateToken(ctx, &store.Token{ID: "t3", Kind: store.KindAPI, Hash: "h1", CreatedAt: t0}), store.ErrExists)
	got, err := s.TokenByHash(ctx, "h2")
	must(t, err)
	if got.ID != "t2" || !got.ClientGroup || got.MaxUses != 3 || got.Group != "web" || got.ExpiresAt == nil || !got.ExpiresAt.Equal(exp) {
		t.Fatalf("TokenByHash = %+v", got)
	}
	_, err = s.TokenByHash(ctx, "nope")
	wantErr(t, err, store.ErrNotFound)
	all, err := s.ListTokens(ctx, "")
	must(t, err)
	enr, err := s.ListTokens(ctx, store.KindEnroll)
	must(t, err)
	if len(all) != 2 || len(enr) != 1 || enr[0].ID != "t2" {
		t.Fatalf("ListTokens: all %d, enroll %v", len(all), enr)
	}
	must(t, s.RevokeToken(ctx, "t1", t0.Add(time.Minute)))
	must(t, s.RevokeToken(ctx, "t1", t0.Add(time.Hour)))
	got, err = s.TokenByHash(ctx, "h1")
	must(t, err)
	if got.RevokedAt == nil || !got.RevokedAt.Equal(t0.Add(time.Minute)) || got.Usable(t0.Add(2*time.Minute)) {
		t.Fatalf("revoked token = %+v", got)
	}
	wantErr(t, s.RevokeToken(ctx, "nope", t0), store.ErrNotFound)
}

func testTokenUses(t *testing.T, s server.Store) {
	ctx := context.Background()
	exp := t0.Add(time.Hour)
	must(t, s.CreateToken(ctx, &store.Token{ID: "e", Kind: store.KindEnroll, Hash: "h", MaxUses: 2, ExpiresAt: &exp, CreatedAt: t0}))
	must(t, s.UseToken(ctx, "e", t0))
	wantErr(t, s.UseToken(ctx, "e", exp), store.ErrExhausted) // expired
	must(t, s.UseToken(ctx, "e", t0))
	wantErr(t, s.UseToken(ctx, "e", t0), store.ErrExhausted) // used up
	must(t, s.CreateToken(ctx, &store.Token{ID: "r", Kind: store.KindEnroll, Hash: "h2", CreatedAt: t0}))
	must(t, s.RevokeToken(ctx, "r", t0))
	wantErr(t, s.UseToken(ctx, "r", t0), store.ErrExhausted) // revoked
	// Concurrent uses never exceed the cap.
	must(t, s.CreateToken(ctx, &store.Token{ID: "c", Kind: store.KindEnroll, Hash: "h3", MaxUses: 5, CreatedAt: t0}))
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for range 20 {
		wg.Go(func() {
			if s.UseToken(ctx, "c", t0) == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if ok != 5 {
		t.Fatalf("%d concurrent uses succeeded, want 5", ok)
	}
}

// testEnrollAgents: enrollments stored in one transaction use their token
// once each, never past its cap; one whose token is used up stores nothing.
func testEnrollAgents(t *testing.T, s server.Store) {
	ctx := context.Background()
	must(t, s.CreateGroup(ctx, "web", t0))
	ok, err := s.GroupExists(ctx, "web")
	must(t, err)
	if no, err := s.GroupExists(ctx, "nope"); err != nil || !ok || no {
		t.Fatalf("GroupExists web %v, nope %v (%v)", ok, no, err)
	}
	must(t, s.CreateToken(ctx, &store.Token{ID: "e", Kind: store.KindEnroll, Hash: "h", MaxUses: 2, CreatedAt: t0}))
	var es []store.Enrollment
	for _, id := range []string{"n1", "n2", "n3"} {
		es = append(es, store.Enrollment{TokenID: "e", At: t0, Agent: agent(id, "m-"+id, "web")})
	}
	errs, err := s.EnrollAgents(ctx, es)
	must(t, err)
	must(t, errs[0])
	must(t, errs[1])
	wantErr(t, errs[2], store.ErrExhausted)
	if _, err := s.Agent(ctx, "n3"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("agent of a used-up token stored: %v", err)
	}
	if ms, err := s.AgentsByMachine(ctx, "m-n2"); err != nil || len(ms) != 1 || ms[0].ID != "n2" {
		t.Fatalf("AgentsByMachine m-n2 = %+v, %v", ms, err)
	}
	tok, err := s.TokenByHash(ctx, "h")
	must(t, err)
	if tok.Uses != 2 {
		t.Fatalf("token uses %d, want 2", tok.Uses)
	}
	// A taken agent id fails the whole group: nothing of it is stored.
	must(t, s.CreateToken(ctx, &store.Token{ID: "f", Kind: store.KindEnroll, Hash: "h4", CreatedAt: t0}))
	_, err = s.EnrollAgents(ctx, []store.Enrollment{{TokenID: "f", At: t0, Agent: agent("n4", "m-n4", "web")}, {TokenID: "f", At: t0, Agent: agent("n1", "m-x", "web")}})
	wantErr(t, err, store.ErrExists)
	if _, err := s.Agent(ctx, "n4"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("agent of a failed group stored: %v", err)
	}
}

func testGroups(t *testing.T, s server.Store) {
	ctx := context.Background()
	must(t, s.CreateGroup(ctx, "web", t0))
	must(t, s.CreateGroup(ctx, "db", t0))
	wantErr(t, s.CreateGroup(ctx, "web", t0), store.ErrExists)
	must(t, s.CreateAgent(ctx, agent("a1", "m1", "web")))
	gs, err := s.ListGroups(ctx)
	must(t, err)
	if len(gs) != 2 || gs[0].Name != "db" || gs[1].Name != "web" || gs[1].Computers != 1 {
		t.Fatalf("ListGroups = %+v", gs)
	}
	must(t, s.SetApproval(ctx, &store.Approval{Group: "web", Vendor: "v", UpdateID: "u", Action: "install", Rollout: 100, UpdatedAt: t0}))
	must(t, s.DeleteGroup(ctx, "web", "db"))
	wantErr(t, s.DeleteGroup(ctx, "web", "db"), store.ErrNotFound)
	a, err := s.Agent(ctx, "a1")
	must(t, err)
	if a.Group != "db" {
		t.Fatalf("agent of deleted group is in %q, want db", a.Group)
	}
	must(t, s.CreateGroup(ctx, "web", t0))
	aps, err := s.Approvals(ctx, "web")
	must(t, err)
	if len(aps) != 0 {
		t.Fatalf("re-created group inherited approvals %+v", aps)
	}
}

func testApprovals(t *testing.T, s server.Store) {
	ctx := context.Background()
	must(t, s.CreateGroup(ctx, "web", t0))
	dl := t0.Add(48 * time.Hour)
	must(t, s.SetApproval(ctx, &store.Approval{Group: "web", Vendor: "v", UpdateID: "b", Action: "install", Rollout: 50, By: "t1", UpdatedAt: t0}))
	must(t, s.SetApproval(ctx, &store.Approval{Group: "web", Vendor: "v", UpdateID: "a", Action: "decline", Rollout: 100, UpdatedAt: t0}))
	must(t, s.SetApproval(ctx, &store.Approval{Group: "web", Vendor: "v", UpdateID: "b", Action: "uninstall", Deadline: &dl, Rollout: 10, UpdatedAt: t0.Add(time.Second)}))
	wantErr(t, s.SetApproval(ctx, &store.Approval{Group: "nope", Vendor: "v", UpdateID: "a", Action: "install", Rollout: 1, UpdatedAt: t0}), store.ErrNotFound)
	aps, err := s.Approvals(ctx, "web")
	must(t, err)
	if len(aps) != 2 || aps[0].UpdateID != "a" || aps[1].Action != "uninstall" || aps[1].Rollout != 10 || aps[1].Deadline == nil || !aps[1].Deadline.Equal(dl) {
		t.Fatalf("Approvals = %+v", aps)
	}
	must(t, s.DeleteApproval(ctx, "web", "v", "a"))
	wantErr(t, s.DeleteApproval(ctx, "web", "v", "a"), store.ErrNotFound)
	_, err = s.Approvals(ctx, "nope")
	wantErr(t, err, store.ErrNotFound)
}

func agent(id, machine, group string) *store.Agent {
	return &store.Agent{ID: id, MachineID: machine, Hostname: "host-" + id, OS: "debian 12", Arch: "amd64", Group: group,
		CertSerial: "s-" + id, Status: store.AgentActive, EnrolledAt: t0, LastSeen: t0}
}

func testAgentCertRenewal(t *testing.T, s server.Store) {
	ctx := context.Background()
	a := agent("r1", "m1", "web")
	a.CertNotAfter = t0.Add(time.Hour)
	must(t, s.CreateAgent(ctx, a))
	got, err := s.Agent(ctx, "r1")
	must(t, err)
	if !got.CertNotAfter.Equal(t0.Add(time.Hour)) || got.PrevCertSerial != "" {
		t.Fatalf("after create: not after %v, prev %q", got.CertNotAfter, got.PrevCertSerial)
	}
	later := t0.Add(2 * time.Hour)
	must(t, s.RenewAgentCert(ctx, "r1", "s-r1", "n1", later))
	// The answer was lost: the agent renews again with the old certificate.
	must(t, s.RenewAgentCert(ctx, "r1", "s-r1", "n2", later))
	got, err = s.Agent(ctx, "r1")
	must(t, err)
	if got.CertSerial != "n2" || got.PrevCertSerial != "s-r1" || !got.CertNotAfter.Equal(later) {
		t.Fatalf("after renewals: serial %q prev %q not after %v", got.CertSerial, got.PrevCertSerial, got.CertNotAfter)
	}
	// A certificate the agent no longer holds renews nothing.
	wantErr(t, s.RenewAgentCert(ctx, "r1", "n1", "n3", later), store.ErrNotFound)
	wantErr(t, s.RenewAgentCert(ctx, "zz", "s-r1", "n3", later), store.ErrNotFound)
	must(t, s.ForgetPrevCert(ctx, "r1"))
	wantErr(t, s.RenewAgentCert(ctx, "r1", "s-r1", "n3", later), store.ErrNotFound)
	wantErr(t, s.RenewAgentCert(ctx, "r1", "", "n3", later), store.ErrNotFound)
	must(t, s.RenewAgentCert(ctx, "r1", "n2", "n3", later))

	b := agent("r2", "m2", "web")
	b.CertNotAfter = t0.Add(30 * time.Minute)
	must(t, s.CreateAgent(ctx, b))
	must(t, s.CreateAgent(ctx, agent("r3", "m3", "web"))) // expiry not recorded
	counts, earliest, err := s.CertExpiry(ctx, []time.Time{t0.Add(time.Hour), t0.Add(3 * time.Hour)})
	must(t, err)
	if len(counts) != 2 || counts[0] != 1 || counts[1] != 2 || !earliest.Equal(t0.Add(30*time.Minute)) {
		t.Fatalf("CertExpiry = %v, %v", counts, earliest)
	}
	must(t, s.SetAgentStatus(ctx, "r2", store.AgentRevoked, "test"))
	counts, earliest, err = s.CertExpiry(ctx, []time.Time{t0.Add(time.Hour)})
	must(t, err)
	if counts[0] != 0 || !earliest.Equal(later) {
		t.Fatalf("CertExpiry without the revoked agent = %v, %v", counts, earliest)
	}
}

func testAgents(t *testing.T, s server.Store) {
	ctx := context.Background()
	must(t, s.CreateAgent(ctx, agent("a1", "m1", "web")))
	must(t, s.CreateAgent(ctx, agent("a2", "m2", "db")))
	wantErr(t, s.CreateAgent(ctx, agent("a1", "m3", "db")), store.ErrExists)
	web, err := s.ListAgents(ctx, "web")
	must(t, err)
	all, err := s.ListAgents(ctx, "")
	must(t, err)
	if len(web) != 1 || len(all) != 2 {
		t.Fatalf("ListAgents: web %d, all %d", len(web), len(all))
	}
	must(t, s.CreateAgent(ctx, agent("a3", "m1", "db")))
	same, err := s.AgentsByMachine(ctx, "m1")
	must(t, err)
	if len(same) != 2 || same[0].ID != "a1" || same[1].ID != "a3" {
		t.Fatalf("AgentsByMachine(m1) = %+v", same)
	}
	must(t, s.DeleteAgent(ctx, "a3"))
	must(t, s.MoveAgents(ctx, []string{"a1", "a2"}, "ops"))
	wantErr(t, s.MoveAgents(ctx, []string{"a1", "zz"}, "web"), store.ErrNotFound)
	a, err := s.Agent(ctx, "a1")
	must(t, err)
	if a.Group != "ops" {
		t.Fatalf("a failed MoveAgents moved a1 to %q", a.Group)
	}
	must(t, s.SetAgentStatus(ctx, "a1", store.AgentReenroll, "cloned"))
	// AgentIdentity: the fields an agent request checks, as Agent has them.
	full, err := s.Agent(ctx, "a1")
	must(t, err)
	id, err := s.AgentIdentity(ctx, "a1")
	must(t, err)
	want := store.Agent{ID: full.ID, MachineID: full.MachineID, Group: full.Group, CertSerial: full.CertSerial,
		PrevCertSerial: full.PrevCertSerial, Status: full.Status, Flag: full.Flag}
	if !reflect.DeepEqual(*id, want) || id.Status != store.AgentReenroll || id.Flag != "cloned" || id.CertSerial == "" {
		t.Fatalf("AgentIdentity = %+v, want %+v", id, want)
	}
	_, err = s.AgentIdentity(ctx, "zz")
	wantErr(t, err, store.ErrNotFound)
	must(t, s.TouchAgent(ctx, "a1", t0.Add(time.Hour)))
	must(t, s.TouchAgents(ctx, map[string]time.Time{"a1": t0.Add(time.Minute), "a2": t0.Add(2 * time.Hour), "gone": t0}))
	if a2, err := s.Agent(ctx, "a2"); err != nil || !a2.LastSeen.Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("TouchAgents: a2 = %+v, %v", a2, err)
	}
	a, err = s.Agent(ctx, "a1")
	must(t, err)
	if a.Status != store.AgentReenroll || a.Flag != "cloned" || !a.LastSeen.Equal(t0.Add(time.Hour)) {
		t.Fatalf("agent = %+v", a)
	}
	counts, err := s.AgentCounts(ctx)
	must(t, err)
	if counts[store.AgentActive] != 1 || counts[store.AgentReenroll] != 1 {
		t.Fatalf("AgentCounts = %v", counts)
	}
	must(t, s.DeleteAgent(ctx, "a1"))
	wantErr(t, s.DeleteAgent(ctx, "a1"), store.ErrNotFound)
	_, err = s.Agent(ctx, "a1")
	wantErr(t, err, store.ErrNotFound)
}

func testReports(t *testing.T, s server.Store) {
	ctx := context.Background()
	must(t, s.CreateAgent(ctx, agent("a1", "m1", "web")))
	must(t, s.CreateAgent(ctx, agent("a2", "m2", "web")))
	r := &store.Report{AgentID: "a1", BatchID: "b1", ReceivedAt: t0.Add(time.Minute), Inventory: []byte(`{"os":"debian"}`),
		Changes: []store.UpdateState{{Vendor: "v", UpdateID: "u1", State: "needed", UpdatedAt: t0}, {Vendor: "v", UpdateID: "u2", State: "installed", UpdatedAt: t0}}}
	applied, err := s.ApplyReport(ctx, r)
	must(t, err)
	if !applied {
		t.Fatal("first delivery not applied")
	}
	// The same batch again (an agent retrying after a lost answer) counts once,
	// even if its content differs.
	r2 := *r
	r2.Changes = []store.UpdateState{{Vendor: "v", UpdateID: "u1", State: "failed", UpdatedAt: t0.Add(time.Hour)}}
	applied, err = s.ApplyReport(ctx, &r2)
	must(t, err)
	if applied {
		t.Fatal("second delivery of batch b1 applied")
	}
	// Batch ids are per agent.
	applied, err = s.ApplyReport(ctx, &store.Report{AgentID: "a2", BatchID: "b1", ReceivedAt: t0,
		Changes: []store.UpdateState{{Vendor: "v", UpdateID: "u1", State: "needed", UpdatedAt: t0}}})
	must(t, err)
	if !applied {
		t.Fatal("a2's batch b1 treated as a1's")
	}
	_, err = s.ApplyReport(ctx, &store.Report{AgentID: "nobody", BatchID: "x", ReceivedAt: t0})
	wantErr(t, err, store.ErrNotFound)
	st, err := s.AgentStates(ctx, "a1")
	must(t, err)
	if len(st) != 2 || st[0].State != "needed" || st[1].State != "installed" {
		t.Fatalf("AgentStates = %+v", st)
	}
	counts, err := s.StateCounts(ctx)
	must(t, err)
	if counts["v/u1"]["needed"] != 2 || counts["v/u2"]["installed"] != 1 {
		t.Fatalf("StateCounts = %v", counts)
	}
	a, err := s.Agent(ctx, "a1")
	must(t, err)
	if string(a.Inventory) != `{"os":"debian"}` || !a.LastSeen.Equal(t0.Add(time.Minute)) {
		t.Fatalf("agent after report = %+v", a)
	}
}

func testReportsOrder(t *testing.T, s server.Store) {
	ctx := context.Background()
	must(t, s.CreateAgent(ctx, agent("a1", "m1", "web")))
	newer := &store.Report{AgentID: "a1", BatchID: "b2", ReceivedAt: t0,
		Changes: []store.UpdateState{{Vendor: "v", UpdateID: "u", State: "installed", UpdatedAt: t0.Add(time.Hour)}}}
	older := &store.Report{AgentID: "a1", BatchID: "b1", ReceivedAt: t0,
		Changes: []store.UpdateState{{Vendor: "v", UpdateID: "u", State: "downloaded", UpdatedAt: t0}}}
	_, err := s.ApplyReport(ctx, newer)
	must(t, err)
	_, err = s.ApplyReport(ctx, older)
	must(t, err)
	st, err := s.AgentStates(ctx, "a1")
	must(t, err)
	if len(st) != 1 || st[0].State != "installed" {
		t.Fatalf("a late older batch overwrote a newer state: %+v", st)
	}
	// Several changes to one update in one batch: the newest wins, of
	// equal times the last; every change is in the history.
	at := t0.Add(2 * time.Hour)
	_, err = s.ApplyReport(ctx, &store.Report{AgentID: "a1", BatchID: "b3", ReceivedAt: t0, Changes: []store.UpdateState{
		{Vendor: "v", UpdateID: "w", State: "failed", UpdatedAt: at.Add(time.Minute)},
		{Vendor: "v", UpdateID: "w", State: "needed", UpdatedAt: at},
		{Vendor: "v", UpdateID: "u", State: "downloaded", UpdatedAt: at},
		{Vendor: "v", UpdateID: "u", State: "installed-pending-reboot", UpdatedAt: at},
		{Vendor: "v", UpdateID: "x", State: "needed", UpdatedAt: at},
	}})
	must(t, err)
	st, err = s.AgentStates(ctx, "a1")
	must(t, err)
	got := map[string]string{}
	for _, x := range st {
		got[x.UpdateID] = x.State
	}
	if got["w"] != "failed" || got["u"] != "installed-pending-reboot" || got["x"] != "needed" || len(got) != 3 {
		t.Fatalf("states after a batch with repeated updates: %v", got)
	}
	ev, err := s.StateEvents(ctx, "a1", 100)
	must(t, err)
	if len(ev) != 7 {
		t.Fatalf("%d state events, want 7 (every change)", len(ev))
	}
}

func testReportsConcurrent(t *testing.T, s server.Store) {
	ctx := context.Background()
	must(t, s.CreateAgent(ctx, agent("a1", "m1", "web")))
	var wg sync.WaitGroup
	var mu sync.Mutex
	applied := 0
	for i := range 40 {
		wg.Go(func() {
			ok, err := s.ApplyReport(ctx, &store.Report{AgentID: "a1", BatchID: fmt.Sprintf("b%d", i%10), ReceivedAt: t0,
				Changes: []store.UpdateState{{Vendor: "v", UpdateID: fmt.Sprintf("u%d", i%10), State: "needed", UpdatedAt: t0}}})
			if err != nil {
				t.Error(err)
				return
			}
			if ok {
				mu.Lock()
				applied++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if applied != 10 {
		t.Fatalf("%d batches applied, want 10 distinct", applied)
	}
}

func testUpdates(t *testing.T, s server.Store) {
	ctx := context.Background()
	us := []store.Update{
		{Vendor: "v", ID: "a", Title: "A", Product: "debian-12", Classification: "security", Severity: "critical", Released: "2026-11-01", SHA256: "1", IndexedAt: t0},
		{Vendor: "v", ID: "b", Title: "B", Product: "debian-12", Classification: "rollup", Severity: "low", Released: "2026-11-02", SHA256: "2", IndexedAt: t0},
		{Vendor: "w", ID: "a", Title: "WA", Product: "ubuntu", Classification: "security", Severity: "low", Released: "2026-10-01", SHA256: "3", IndexedAt: t0},
	}
	must(t, s.UpsertUpdates(ctx, us))
	us[0].Title, us[0].SHA256 = "A2", "9"
	must(t, s.UpsertUpdates(ctx, us[:1]))
	tests := []struct {
		f    store.UpdateFilter
		want []string
	}{
		{store.UpdateFilter{}, []string{"v/b", "v/a", "w/a"}},
		{store.UpdateFilter{Vendor: "v"}, []string{"v/b", "v/a"}},
		{store.UpdateFilter{Severity: "low"}, []string{"v/b", "w/a"}},
		{store.UpdateFilter{Classification: "security", Product: "debian-12"}, []string{"v/a"}},
		{store.UpdateFilter{Product: "none"}, nil},
	}
	for _, tc := range tests {
		got, err := s.ListUpdates(ctx, tc.f)
		must(t, err)
		var ids []string
		for _, u := range got {
			ids = append(ids, u.Vendor+"/"+u.ID)
		}
		if fmt.Sprint(ids) != fmt.Sprint(tc.want) {
			t.Errorf("ListUpdates(%+v) = %v, want %v", tc.f, ids, tc.want)
		}
	}
	h, err := s.UpdateHashes(ctx, "v")
	must(t, err)
	if len(h) != 2 || h["a"] != "9" {
		t.Fatalf("UpdateHashes = %v", h)
	}
	u, err := s.GetUpdate(ctx, "v", "a")
	must(t, err)
	if u.Title != "A2" {
		t.Fatalf("GetUpdate = %+v", u)
	}
	_, err = s.GetUpdate(ctx, "v", "zz")
	wantErr(t, err, store.ErrNotFound)
}

func testSyncs(t *testing.T, s server.Store) {
	ctx := context.Background()
	var ids []int64
	for i := range 3 {
		id, err := s.StartSync(ctx, &store.SyncRun{Vendor: "v", Trigger: "manual", StartedAt: t0.Add(time.Duration(i) * time.Minute)})
		must(t, err)
		ids = append(ids, id)
	}
	fin := t0.Add(10 * time.Minute)
	must(t, s.FinishSync(ctx, &store.SyncRun{ID: ids[1], Status: store.SyncOK, Changed: true, UpdatesFetched: 4, PayloadsFetched: 2, BytesFetched: 1 << 40, FinishedAt: &fin}))
	must(t, s.FinishSync(ctx, &store.SyncRun{ID: ids[2], Status: store.SyncFailed, Error: "boom", FinishedAt: &fin}))
	wantErr(t, s.FinishSync(ctx, &store.SyncRun{ID: 9999, Status: store.SyncOK}), store.ErrNotFound)
	runs, err := s.ListSyncs(ctx, 2)
	must(t, err)
	if len(runs) != 2 || runs[0].ID != ids[2] || runs[0].Error != "boom" || runs[1].BytesFetched != 1<<40 || !runs[1].Changed || runs[1].FinishedAt == nil {
		t.Fatalf("ListSyncs = %+v", runs)
	}
	all, err := s.ListSyncs(ctx, 0)
	must(t, err)
	if len(all) != 3 || all[2].Status != store.SyncRunning {
		t.Fatalf("ListSyncs(0) = %+v", all)
	}
	// Paging newest first by id.
	older, err := s.ListSyncsBefore(ctx, runs[1].ID, 2)
	must(t, err)
	if len(older) != 1 || older[0].ID != ids[0] {
		t.Fatalf("ListSyncsBefore(%d) = %+v", runs[1].ID, older)
	}
	first, err := s.ListSyncsBefore(ctx, 0, 1)
	must(t, err)
	if len(first) != 1 || first[0].ID != ids[2] {
		t.Fatalf("ListSyncsBefore(0) = %+v", first)
	}
}

// testReportsGrouped checks the optional group-commit capability.
func testReportsGrouped(t *testing.T, s server.Store) {
	b, ok := s.(server.ReportBatcher)
	if !ok {
		t.Skip("this backend has no group commit (server.ReportBatcher); reports go one by one")
	}
	ctx := context.Background()
	must(t, s.CreateAgent(ctx, agent("a1", "m1", "web")))
	mk := func(batch, upd string) *store.Report {
		return &store.Report{AgentID: "a1", BatchID: batch, ReceivedAt: t0,
			Changes: []store.UpdateState{{Vendor: "v", UpdateID: upd, State: "needed", UpdatedAt: t0}}}
	}
	applied, err := b.ApplyReports(ctx, []*store.Report{mk("b1", "u1"), mk("b2", "u2"), mk("b1", "u3")})
	must(t, err)
	if fmt.Sprint(applied) != "[true true false]" {
		t.Fatalf("applied = %v, want [true true false]", applied)
	}
	applied, err = b.ApplyReports(ctx, []*store.Report{mk("b2", "u4"), mk("b3", "u5")})
	must(t, err)
	if fmt.Sprint(applied) != "[false true]" {
		t.Fatalf("applied = %v, want [false true]", applied)
	}
	st, err := s.AgentStates(ctx, "a1")
	must(t, err)
	if len(st) != 3 {
		t.Fatalf("states = %+v, want u1, u2, u5", st)
	}
	// One unknown agent fails the whole group and stores nothing of it.
	bad := mk("b9", "u9")
	bad.AgentID = "nobody"
	_, err = b.ApplyReports(ctx, []*store.Report{mk("b8", "u8"), bad})
	wantErr(t, err, store.ErrNotFound)
	if st, _ := s.AgentStates(ctx, "a1"); len(st) != 3 {
		t.Fatalf("a failed group left states %+v", st)
	}
}

func testPrune(t *testing.T, s server.Store) {
	ctx := context.Background()
	day := 24 * time.Hour
	now := t0.Add(100 * day)
	must(t, s.CreateAgent(ctx, agent("a1", "m1", "web")))
	for i, age := range []time.Duration{40 * day, 31 * day, 29 * day, time.Hour} {
		_, err := s.ApplyReport(ctx, &store.Report{AgentID: "a1", BatchID: fmt.Sprintf("b%d", i), ReceivedAt: now.Add(-age),
			Changes: []store.UpdateState{{Vendor: "v", UpdateID: "u", State: "needed", UpdatedAt: now.Add(-age)}}})
		must(t, err)
	}
	for _, age := range []time.Duration{120 * day, 91 * day, day} {
		id, err := s.StartSync(ctx, &store.SyncRun{Vendor: "v", Trigger: "schedule", StartedAt: now.Add(-age)})
		must(t, err)
		fin := now.Add(-age + time.Minute)
		must(t, s.FinishSync(ctx, &store.SyncRun{ID: id, Status: store.SyncOK, FinishedAt: &fin}))
	}
	_, err := s.StartSync(ctx, &store.SyncRun{Vendor: "v", Trigger: "manual", StartedAt: now.Add(-200 * day)}) // still running: kept
	must(t, err)
	got, err := s.Prune(ctx, store.DefaultRetention, now)
	must(t, err)
	if got["reports"] != 2 || got["sync_runs"] != 2 {
		t.Fatalf("Prune = %v, want 2 reports and 2 sync runs", got)
	}
	// A retry of a pruned batch applies again, harmlessly: the newer state stays.
	applied, err := s.ApplyReport(ctx, &store.Report{AgentID: "a1", BatchID: "b0", ReceivedAt: now,
		Changes: []store.UpdateState{{Vendor: "v", UpdateID: "u", State: "downloaded", UpdatedAt: now.Add(-40 * day)}}})
	must(t, err)
	st, err := s.AgentStates(ctx, "a1")
	must(t, err)
	if !applied || len(st) != 1 || st[0].State != "needed" || !st[0].UpdatedAt.Equal(now.Add(-time.Hour)) {
		t.Fatalf("retry of a pruned batch: applied %v, states %+v", applied, st)
	}
	// The kept batch is still recognised.
	if applied, _ := s.ApplyReport(ctx, &store.Report{AgentID: "a1", BatchID: "b2", ReceivedAt: now}); applied {
		t.Fatal("a batch inside the retention window applied twice")
	}
	runs, err := s.ListSyncs(ctx, 0)
	must(t, err)
	if len(runs) != 2 {
		t.Fatalf("sync runs left: %+v", runs)
	}
	// A zero policy keeps everything.
	got, err = s.Prune(ctx, store.Retention{}, now.Add(1000*day))
	must(t, err)
	if len(got) != 0 {
		t.Fatalf("Prune with a zero policy deleted %v", got)
	}
}

// testPruneEvents: the default policy keeps each computer's newest
// store.TimelineEvents state changes (what its timeline shows).
func testPruneEvents(t *testing.T, s server.Store) {
	ctx := context.Background()
	must(t, s.CreateAgent(ctx, agent("a1", "m1", "web")))
	must(t, s.CreateAgent(ctx, agent("a2", "m2", "web")))
	n := store.TimelineEvents + 3
	var rs []*store.Report
	for i := range n {
		rs = append(rs, &store.Report{AgentID: "a1", BatchID: fmt.Sprintf("b%d", i), ReceivedAt: t0,
			Changes: []store.UpdateState{{Vendor: "v", UpdateID: fmt.Sprintf("u%03d", i), State: "needed", UpdatedAt: t0}}})
	}
	rs = append(rs, &store.Report{AgentID: "a2", BatchID: "b0", ReceivedAt: t0,
		Changes: []store.UpdateState{{Vendor: "v", UpdateID: "u000", State: "needed", UpdatedAt: t0}}})
	for _, r := range rs {
		_, err := s.ApplyReport(ctx, r)
		must(t, err)
	}
	got, err := s.Prune(ctx, store.DefaultRetention, t0)
	must(t, err)
	if got["state_events"] != 3 {
		t.Fatalf("Prune = %v, want 3 state events", got)
	}
	ev, err := s.StateEvents(ctx, "a1", 1000)
	must(t, err)
	if len(ev) != store.TimelineEvents || ev[0].UpdateID != fmt.Sprintf("u%03d", n-1) || ev[len(ev)-1].UpdateID != "u003" {
		t.Fatalf("a1 keeps %d events, newest %s, oldest %s", len(ev), ev[0].UpdateID, ev[len(ev)-1].UpdateID)
	}
	if ev, _ := s.StateEvents(ctx, "a2", 1000); len(ev) != 1 {
		t.Fatalf("a2's single event pruned: %+v", ev)
	}
}

// testLastAdminConcurrent: two admins revoke each other's token at the same
// moment, over and over, on separate connections (as two server processes
// would). The store lets exactly one through each time: the last usable
// admin token is never revoked. (A check-then-revoke without the lock lost
// both tokens on PostgreSQL within 60 rounds; hence 150.)
func testLastAdminConcurrent(t *testing.T, s server.Store) {
	ctx := context.Background()
	// Tokens that do not count: revoked, expired, used up, not admin.
	past := t0.Add(-time.Hour)
	for i, tk := range []*store.Token{
		{ID: "gone", Kind: store.KindAPI, Role: store.RoleAdmin, RevokedAt: &past},
		{ID: "old", Kind: store.KindAPI, Role: store.RoleAdmin, ExpiresAt: &past},
		{ID: "spent", Kind: store.KindAPI, Role: store.RoleAdmin, MaxUses: 1, Uses: 1},
		{ID: "viewer", Kind: store.KindAPI, Role: store.RoleViewer},
	} {
		tk.Hash, tk.CreatedAt = fmt.Sprintf("x%d", i), t0
		must(t, s.CreateToken(ctx, tk))
	}
	for round := 0; round < 150; round++ {
		a, b := fmt.Sprintf("a%d", round), fmt.Sprintf("b%d", round)
		for _, id := range []string{a, b} {
			must(t, s.CreateToken(ctx, &store.Token{ID: id, Kind: store.KindAPI, Role: store.RoleAdmin, Hash: "h" + id, CreatedAt: t0}))
		}
		if round > 0 {
			// The survivor of the last round goes (two others exist now).
			for _, tk := range listTokens(t, s) {
				if tk.Role == store.RoleAdmin && tk.Usable(t0) && tk.ID != a && tk.ID != b {
					must(t, s.RevokeTokenKeepingAdmin(ctx, tk.ID, t0))
				}
			}
		}
		start := make(chan struct{})
		errs := make(chan error, 2)
		for _, id := range []string{a, b} {
			go func() {
				<-start
				errs <- s.RevokeTokenKeepingAdmin(ctx, id, t0)
			}()
		}
		close(start)
		var ok, last int
		for range 2 {
			switch err := <-errs; {
			case err == nil:
				ok++
			case errors.Is(err, store.ErrLastAdmin):
				last++
			default:
				t.Fatalf("round %d: %v", round, err)
			}
		}
		usable := 0
		for _, tk := range listTokens(t, s) {
			if tk.Role == store.RoleAdmin && tk.Usable(t0) {
				usable++
			}
		}
		if ok != 1 || last != 1 || usable != 1 {
			t.Fatalf("round %d: %d revoked, %d refused, %d usable admin tokens left; want 1, 1, 1", round, ok, last, usable)
		}
	}
	// Revoking a token that does not count, or an unknown one.
	must(t, s.RevokeTokenKeepingAdmin(ctx, "viewer", t0))
	must(t, s.RevokeTokenKeepingAdmin(ctx, "gone", t0))
	wantErr(t, s.RevokeTokenKeepingAdmin(ctx, "nope", t0), store.ErrNotFound)
}

func listTokens(t testing.TB, s server.Store) []store.Token {
	t.Helper()
	ts, err := s.ListTokens(context.Background(), store.KindAPI)
	must(t, err)
	return ts
}
