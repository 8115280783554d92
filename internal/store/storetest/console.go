package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/server"
	"github.com/bulwarkhq/bulwark/internal/store"
)

func testUsersSessions(t *testing.T, s server.Store) {
	ctx := context.Background()
	must(t, s.CreateUser(ctx, &store.User{Name: "alice", Role: store.RoleApprover, Hash: "h1", CreatedAt: t0}))
	wantErr(t, s.CreateUser(ctx, &store.User{Name: "alice", Role: store.RoleAdmin, Hash: "h2", CreatedAt: t0}), store.ErrExists)
	must(t, s.SetUserPassword(ctx, "alice", "h3", true))
	wantErr(t, s.SetUserPassword(ctx, "bob", "h3", false), store.ErrNotFound)
	u, err := s.User(ctx, "alice")
	must(t, err)
	if u.Role != store.RoleApprover || u.Hash != "h3" || !u.CreatedAt.Equal(t0) || !u.MustChange {
		t.Fatalf("user = %+v", u)
	}
	must(t, s.SetUserPassword(ctx, "alice", "h4", false))
	if u, _ := s.User(ctx, "alice"); u.MustChange || u.Hash != "h4" {
		t.Fatalf("after a chosen password: %+v", u)
	}
	_, err = s.User(ctx, "bob")
	wantErr(t, err, store.ErrNotFound)
	must(t, s.CreateSession(ctx, &store.Session{Hash: "s1", Subject: "user:alice", Role: "approver", CSRF: "c1", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}))
	se, err := s.SessionByHash(ctx, "s1", t0.Add(time.Minute))
	must(t, err)
	if se.Subject != "user:alice" || se.CSRF != "c1" {
		t.Fatalf("session = %+v", se)
	}
	_, err = s.SessionByHash(ctx, "s1", t0.Add(time.Hour))
	wantErr(t, err, store.ErrNotFound) // expired
	must(t, s.DeleteSession(ctx, "s1"))
	_, err = s.SessionByHash(ctx, "s1", t0)
	wantErr(t, err, store.ErrNotFound)

	// Last use: set at creation, moved forward only.
	for _, h := range []string{"s2", "s3"} {
		must(t, s.CreateSession(ctx, &store.Session{Hash: h, Subject: "user:alice", Role: "approver", CSRF: "c", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}))
	}
	must(t, s.CreateSession(ctx, &store.Session{Hash: "s4", Subject: "user:carol", Role: "viewer", CSRF: "c", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}))
	se, err = s.SessionByHash(ctx, "s2", t0)
	must(t, err)
	if !se.SeenAt.Equal(t0) {
		t.Fatalf("new session seen at %v, want %v", se.SeenAt, t0)
	}
	must(t, s.TouchSession(ctx, "s2", t0.Add(5*time.Minute)))
	must(t, s.TouchSession(ctx, "s2", t0.Add(2*time.Minute)))
	if se, _ := s.SessionByHash(ctx, "s2", t0); !se.SeenAt.Equal(t0.Add(5 * time.Minute)) {
		t.Fatalf("touched session seen at %v", se.SeenAt)
	}
	// Every session of one subject ends at once; others stay.
	must(t, s.DeleteSessionsOf(ctx, "user:alice"))
	for _, h := range []string{"s2", "s3"} {
		_, err = s.SessionByHash(ctx, h, t0)
		wantErr(t, err, store.ErrNotFound)
	}
	_, err = s.SessionByHash(ctx, "s4", t0)
	must(t, err)
}

// testUserAccess: roles and disabling, and the last enabled admin user
// can be neither demoted nor disabled.
func testUserAccess(t *testing.T, s server.Store) {
	ctx := context.Background()
	must(t, s.CreateUser(ctx, &store.User{Name: "root", Role: store.RoleAdmin, Hash: "h", CreatedAt: t0}))
	must(t, s.CreateUser(ctx, &store.User{Name: "ann", Role: store.RoleViewer, Hash: "h", CreatedAt: t0}))
	off := t0.Add(time.Hour)
	wantErr(t, s.SetUserAccess(ctx, "root", store.RoleViewer, nil), store.ErrLastAdminUser)
	wantErr(t, s.SetUserAccess(ctx, "root", store.RoleAdmin, &off), store.ErrLastAdminUser)
	wantErr(t, s.SetUserAccess(ctx, "nobody", store.RoleAdmin, nil), store.ErrNotFound)
	must(t, s.SetUserAccess(ctx, "root", store.RoleAdmin, nil)) // no change is fine
	must(t, s.SetUserAccess(ctx, "ann", store.RoleAdmin, nil))
	must(t, s.SetUserAccess(ctx, "root", store.RoleApprover, &off))
	u, err := s.User(ctx, "root")
	must(t, err)
	if u.Role != store.RoleApprover || u.DisabledAt == nil || !u.DisabledAt.Equal(off) {
		t.Fatalf("root = %+v", u)
	}
	// Disabling again keeps the first time.
	must(t, s.SetUserAccess(ctx, "root", store.RoleApprover, &t0))
	if u, _ := s.User(ctx, "root"); !u.DisabledAt.Equal(off) {
		t.Fatalf("disabled again: %+v", u)
	}
	// ann is now the only enabled admin: a disabled admin does not count.
	must(t, s.SetUserAccess(ctx, "root", store.RoleAdmin, &off))
	wantErr(t, s.SetUserAccess(ctx, "ann", store.RoleViewer, nil), store.ErrLastAdminUser)
	must(t, s.SetUserAccess(ctx, "root", store.RoleAdmin, nil))
	must(t, s.SetUserAccess(ctx, "ann", store.RoleViewer, nil))
	if us, _ := s.ListUsers(ctx); len(us) != 2 || us[0].Name != "ann" || us[0].Role != store.RoleViewer || us[1].DisabledAt != nil {
		t.Fatalf("users = %+v", us)
	}
	// Two admins demoting each other at once: one wins, one is refused.
	must(t, s.SetUserAccess(ctx, "ann", store.RoleAdmin, nil))
	errs := make(chan error, 2)
	for _, n := range []string{"ann", "root"} {
		go func() { errs <- s.SetUserAccess(ctx, n, store.RoleViewer, nil) }()
	}
	e1, e2 := <-errs, <-errs
	if (e1 == nil) == (e2 == nil) || !(errors.Is(e1, store.ErrLastAdminUser) || errors.Is(e2, store.ErrLastAdminUser)) {
		t.Fatalf("concurrent demotions: %v, %v; want exactly one refused as the last admin", e1, e2)
	}
}

func testAudit(t *testing.T, s server.Store) {
	ctx := context.Background()
	for i := range 5 {
		must(t, s.AddAudit(ctx, &store.AuditEntry{At: t0.Add(time.Duration(i) * time.Minute), Actor: "user:alice", Via: "console", Action: "a", Target: string(rune('0' + i)), Remote: "192.0.2.1"}))
	}
	page, err := s.ListAudit(ctx, 0, 3)
	must(t, err)
	if len(page) != 3 || page[0].Target != "4" || page[2].Target != "2" || page[0].Remote != "192.0.2.1" {
		t.Fatalf("first page = %+v", page)
	}
	rest, err := s.ListAudit(ctx, page[2].ID, 3)
	must(t, err)
	if len(rest) != 2 || rest[0].Target != "1" || rest[1].Target != "0" {
		t.Fatalf("second page = %+v", rest)
	}
}

// testCompliance: per-computer figures follow reports and the update
// index; lists filter and page by cursor; groups are summed; a rename
// carries computers and approvals.
func testCompliance(t *testing.T, s server.Store) {
	ctx := context.Background()
	must(t, s.CreateGroup(ctx, "web", t0))
	must(t, s.CreateGroup(ctx, "db", t0))
	must(t, s.UpsertUpdates(ctx, []store.Update{
		{Vendor: "v", ID: "crit", Title: "c", Product: "p", Classification: "security", Severity: "critical", SHA256: "1", IndexedAt: t0},
		{Vendor: "v", ID: "imp", Title: "i", Product: "p", Classification: "security", Severity: "important", SHA256: "2", IndexedAt: t0},
	}))
	for i, id := range []string{"a1", "a2", "a3", "a4"} {
		a := agent(id, "m"+id, "web")
		a.Hostname = []string{"zeta", "alpha", "alpha", "mid"}[i]
		if id == "a4" {
			a.Group, a.LastSeen = "db", t0.Add(-30*24*time.Hour)
		}
		must(t, s.CreateAgent(ctx, a))
	}
	report := func(agentID, batch string, states ...string) {
		var cs []store.UpdateState
		for i := 0; i < len(states); i += 2 {
			cs = append(cs, store.UpdateState{Vendor: "v", UpdateID: states[i], State: states[i+1], Detail: "why " + states[i+1], UpdatedAt: t0.Add(time.Minute)})
		}
		_, err := s.ApplyReport(ctx, &store.Report{AgentID: agentID, BatchID: batch, ReceivedAt: t0.Add(time.Minute), Changes: cs})
		must(t, err)
	}
	report("a1", "b1", "crit", "needed", "imp", "failed")
	report("a2", "b1", "crit", "installed-pending-reboot", "imp", "needed", "other", "needed")
	c, err := s.Computer(ctx, "a1")
	must(t, err)
	if c.MissingCritical != 1 || c.MissingImportant != 1 || c.Failed != 1 || c.PendingReboot {
		t.Fatalf("a1 = %+v", c.Compliance)
	}
	c, err = s.Computer(ctx, "a2")
	must(t, err)
	if c.MissingCritical != 0 || c.MissingImportant != 1 || c.MissingOther != 1 || !c.PendingReboot {
		t.Fatalf("a2 = %+v", c.Compliance)
	}
	// a1 installs the critical update: its figures follow.
	report("a1", "b2", "crit", "installed")
	c, err = s.Computer(ctx, "a1")
	must(t, err)
	if c.MissingCritical != 0 || c.MissingImportant != 1 {
		t.Fatalf("a1 after install = %+v", c.Compliance)
	}
	ev, err := s.StateEvents(ctx, "a1", 10)
	must(t, err)
	if len(ev) != 3 || ev[0].UpdateID != "crit" || ev[0].State != "installed" || ev[0].Detail != "why installed" {
		t.Fatalf("events = %+v", ev)
	}
	// The vendor raises "imp" to critical: every computer that reported it moves.
	must(t, s.UpsertUpdates(ctx, []store.Update{{Vendor: "v", ID: "imp", Title: "i", Product: "p", Classification: "security", Severity: "critical", SHA256: "3", IndexedAt: t0}}))
	c, err = s.Computer(ctx, "a2")
	must(t, err)
	if c.MissingCritical != 1 || c.MissingImportant != 0 {
		t.Fatalf("a2 after the severity change = %+v", c.Compliance)
	}

	list := func(f store.ComputerFilter) []string {
		t.Helper()
		cs, err := s.ListComputers(ctx, f)
		must(t, err)
		var ids []string
		for _, c := range cs {
			ids = append(ids, c.ID)
		}
		n, err := s.CountComputers(ctx, f)
		must(t, err)
		if f.After == "" && f.Limit == 0 && n != len(ids) {
			t.Fatalf("CountComputers(%+v) = %d, list has %d", f, n, len(ids))
		}
		return ids
	}
	eq := func(got []string, want ...string) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("got %v, want %v", got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("got %v, want %v", got, want)
			}
		}
	}
	eq(list(store.ComputerFilter{}), "a2", "a3", "a4", "a1") // by hostname, then id
	eq(list(store.ComputerFilter{Missing: "critical"}), "a2", "a1")
	eq(list(store.ComputerFilter{Missing: "any", Group: "web"}), "a2", "a1")
	eq(list(store.ComputerFilter{Missing: "none"}), "a3", "a4")
	eq(list(store.ComputerFilter{Failed: true}), "a1")
	eq(list(store.ComputerFilter{Reboot: true}), "a2")
	eq(list(store.ComputerFilter{StaleFrom: t0.Add(-24 * time.Hour)}), "a4")
	eq(list(store.ComputerFilter{SeenAfter: t0.Add(-24 * time.Hour)}), "a2", "a3", "a1")
	eq(list(store.ComputerFilter{Search: "al"}), "a2", "a3")
	eq(list(store.ComputerFilter{Search: "a%"}))       // LIKE wildcards are literal
	eq(list(store.ComputerFilter{Search: "a4"}), "a4") // an exact id
	eq(list(store.ComputerFilter{OS: "debian 12", Status: store.AgentActive, Group: "db"}), "a4")
	page, err := s.ListComputers(ctx, store.ComputerFilter{Limit: 2})
	must(t, err)
	eq(list(store.ComputerFilter{Limit: 2, After: page[1].Hostname + "\x00" + page[1].ID}), "a4", "a1")

	gs, err := s.GroupCompliance(ctx, t0.Add(-24*time.Hour))
	must(t, err)
	want := []store.GroupCompliance{
		{Group: "db", Computers: 1, Stale: 1, Compliant: 1},
		{Group: "web", Computers: 3, MissingCritical: 2, MissingImportant: 0, MissingOther: 1, Failed: 1, PendingReboot: 1, Compliant: 1},
	}
	if len(gs) != 2 || gs[0] != want[0] || gs[1] != want[1] {
		t.Fatalf("GroupCompliance = %+v, want %+v", gs, want)
	}
	sc, err := s.GroupStateCounts(ctx, "web", "v", "imp")
	must(t, err)
	if sc["failed"] != 1 || sc["needed"] != 1 {
		t.Fatalf("GroupStateCounts = %v", sc)
	}

	must(t, s.SetApproval(ctx, &store.Approval{Group: "web", Vendor: "v", UpdateID: "crit", Action: "install", Rollout: 100, UpdatedAt: t0}))
	must(t, s.RenameGroup(ctx, "web", "www"))
	wantErr(t, s.RenameGroup(ctx, "web", "x"), store.ErrNotFound)
	wantErr(t, s.RenameGroup(ctx, "www", "db"), store.ErrExists)
	aps, err := s.Approvals(ctx, "www")
	must(t, err)
	if len(aps) != 1 || aps[0].Group != "www" {
		t.Fatalf("approvals after rename = %+v", aps)
	}
	eq(list(store.ComputerFilter{Group: "www"}), "a2", "a3", "a1")

	// The group counts follow renames, moves and removals.
	must(t, s.DeleteAgent(ctx, "a4"))
	must(t, s.MoveAgents(ctx, []string{"a1"}, "db"))
	gs, err = s.GroupCompliance(ctx, t0.Add(-24*time.Hour))
	must(t, err)
	want = []store.GroupCompliance{
		{Group: "db", Computers: 1, MissingCritical: 1, Failed: 1},
		{Group: "www", Computers: 2, MissingCritical: 1, MissingOther: 1, PendingReboot: 1, Compliant: 1},
	}
	if len(gs) != 2 || gs[0] != want[0] || gs[1] != want[1] {
		t.Fatalf("GroupCompliance after rename, move and delete = %+v, want %+v", gs, want)
	}
}
