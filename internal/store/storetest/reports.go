package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/server"
	"github.com/bulwarkhq/bulwark/internal/store"
)

// testReportsManyChanges: a report's changes are stored as if one by one,
// whatever their number (the store may write several in one statement),
// including several changes to one update in one report.
func testReportsManyChanges(t *testing.T, s server.Store) {
	ctx := context.Background()
	must(t, s.CreateAgent(ctx, agent("a1", "m1", "web")))
	ch := func(upd, state string, at time.Duration) store.UpdateState {
		return store.UpdateState{Vendor: "v", UpdateID: upd, State: state, Detail: state + " " + upd, UpdatedAt: t0.Add(at)}
	}
	apply := func(batch string, cs ...store.UpdateState) {
		t.Helper()
		applied, err := s.ApplyReport(ctx, &store.Report{AgentID: "a1", BatchID: batch, ReceivedAt: t0, Changes: cs})
		must(t, err)
		if !applied {
			t.Fatalf("batch %s not applied", batch)
		}
	}
	states := func() map[string]string {
		t.Helper()
		st, err := s.AgentStates(ctx, "a1")
		must(t, err)
		m := map[string]string{}
		for _, c := range st {
			m[c.UpdateID] = c.State + "@" + c.UpdatedAt.Sub(t0).String()
		}
		return m
	}
	// u1 three times: the newest wins, an older one after it does not;
	// u2 twice at one time: the last wins.
	apply("b1", ch("u1", "needed", time.Minute), ch("u2", "needed", time.Minute), ch("u1", "downloaded", 2*time.Minute),
		ch("u1", "failed", 0), ch("u2", "installed", time.Minute), ch("u3", "needed", 0))
	if got, want := fmt.Sprint(states()), "map[u1:downloaded@2m0s u2:installed@1m0s u3:needed@0s]"; got != want {
		t.Fatalf("states after one report with repeated updates = %s, want %s", got, want)
	}
	ev, err := s.StateEvents(ctx, "a1", 100)
	must(t, err)
	if len(ev) != 6 || ev[0].UpdateID != "u3" || ev[5].State != "needed" || ev[5].UpdateID != "u1" || ev[5].Detail != "needed u1" {
		t.Fatalf("events of that report = %+v, want all six, newest first", ev)
	}
	// Long reports: 16, 17 (one repeat), 40 (repeats at both ends).
	for _, n := range []int{16, 17, 40} {
		var cs []store.UpdateState
		for i := range n - 1 {
			cs = append(cs, ch(fmt.Sprintf("n%d-%02d", n, i), "needed", time.Hour))
		}
		// The last change repeats the first update, newer.
		cs = append(cs, ch(fmt.Sprintf("n%d-00", n), "installed", 2*time.Hour))
		if n == 40 {
			// and an older repeat of the last but one, which loses.
			cs[1] = ch(fmt.Sprintf("n%d-%02d", n, n-2), "failed", 0)
		}
		apply(fmt.Sprintf("long%d", n), cs...)
		st := states()
		if got := st[fmt.Sprintf("n%d-00", n)]; got != "installed@2h0m0s" {
			t.Errorf("report of %d changes: first update %s, want installed@2h0m0s", n, got)
		}
		if got := st[fmt.Sprintf("n%d-%02d", n, n-2)]; got != "needed@1h0m0s" {
			t.Errorf("report of %d changes: last but one update %s, want needed@1h0m0s", n, got)
		}
		ev, err := s.StateEvents(ctx, "a1", n)
		must(t, err)
		if len(ev) != n || ev[0].State != "installed" || ev[n-1].UpdateID != cs[0].UpdateID {
			t.Fatalf("report of %d changes: %d events (newest %+v), want %d, newest first", n, len(ev), ev[0], n)
		}
	}
	if st := states(); len(st) != 3+15+16+38 {
		t.Fatalf("%d states after the long reports, want %d", len(st), 3+15+16+38)
	}
}

// testReportsLastSeen: a report moves the agent's last-seen time forward,
// never back, with or without changes.
func testReportsLastSeen(t *testing.T, s server.Store) {
	ctx := context.Background()
	must(t, s.CreateAgent(ctx, agent("a1", "m1", "web")))
	one := []store.UpdateState{{Vendor: "v", UpdateID: "u", State: "needed", UpdatedAt: t0}}
	for i, tc := range []struct {
		received time.Duration
		changes  []store.UpdateState
		want     time.Duration
	}{
		{time.Hour, one, time.Hour},
		{time.Minute, one, time.Hour}, // late: stays
		{time.Minute, nil, time.Hour},
		{2 * time.Hour, nil, 2 * time.Hour},
		{3 * time.Hour, one, 3 * time.Hour},
	} {
		_, err := s.ApplyReport(ctx, &store.Report{AgentID: "a1", BatchID: fmt.Sprintf("b%d", i), ReceivedAt: t0.Add(tc.received), Changes: tc.changes})
		must(t, err)
		a, err := s.Agent(ctx, "a1")
		must(t, err)
		if got := a.LastSeen.Sub(t0); got != tc.want {
			t.Fatalf("report %d received at +%v with %d changes: last seen +%v, want +%v", i, tc.received, len(tc.changes), got, tc.want)
		}
	}
}

// testReportsGroupFigures: the per-group compliance counts stay equal to a
// count of the computers' own figures through reports that change the
// figures, leave them as they were, or change a count but not whether it is
// above zero (all of which the store may skip differently).
func testReportsGroupFigures(t *testing.T, s server.Store) {
	ctx := context.Background()
	must(t, s.CreateGroup(ctx, "web", t0))
	must(t, s.CreateGroup(ctx, "db", t0))
	must(t, s.UpsertUpdates(ctx, []store.Update{
		{Vendor: "v", ID: "c1", Title: "c", Product: "p", Classification: "security", Severity: "critical", SHA256: "1", IndexedAt: t0},
		{Vendor: "v", ID: "c2", Title: "c", Product: "p", Classification: "security", Severity: "critical", SHA256: "2", IndexedAt: t0},
		{Vendor: "v", ID: "i1", Title: "i", Product: "p", Classification: "security", Severity: "important", SHA256: "3", IndexedAt: t0},
	}))
	ids := []string{"a1", "a2", "a3"}
	for _, id := range ids {
		must(t, s.CreateAgent(ctx, agent(id, "m"+id, "web")))
	}
	must(t, s.CreateAgent(ctx, agent("d1", "md1", "db")))
	ids = append(ids, "d1")
	batch := 0
	report := func(agentID string, states ...string) {
		t.Helper()
		batch++
		at := t0.Add(time.Duration(batch) * time.Minute)
		var cs []store.UpdateState
		for i := 0; i < len(states); i += 2 {
			cs = append(cs, store.UpdateState{Vendor: "v", UpdateID: states[i], State: states[i+1], UpdatedAt: at})
		}
		_, err := s.ApplyReport(ctx, &store.Report{AgentID: agentID, BatchID: fmt.Sprint("b", batch), ReceivedAt: at, Changes: cs})
		must(t, err)
	}
	check := func(step string) {
		t.Helper()
		want := map[string]*store.GroupCompliance{"db": {Group: "db"}, "web": {Group: "web"}}
		for _, id := range ids {
			c, err := s.Computer(ctx, id)
			must(t, err)
			g := want[c.Group]
			g.Computers++
			b := func(n int) int { return min(n, 1) }
			g.MissingCritical += b(c.MissingCritical)
			g.MissingImportant += b(c.MissingImportant)
			g.MissingOther += b(c.MissingOther)
			g.Failed += b(c.Failed)
			if c.PendingReboot {
				g.PendingReboot++
			}
			if c.MissingCritical+c.MissingImportant+c.MissingOther+c.Failed == 0 {
				g.Compliant++
			}
		}
		gs, err := s.GroupCompliance(ctx, t0.Add(-time.Hour))
		must(t, err)
		if len(gs) != 2 || gs[0] != *want["db"] || gs[1] != *want["web"] {
			t.Fatalf("after %s: GroupCompliance = %+v, want %+v %+v (the computers' own figures)", step, gs, *want["db"], *want["web"])
		}
	}
	check("enrollment")
	report("a1", "c1", "needed", "c2", "needed", "i1", "needed")
	report("a2", "c1", "needed", "i1", "installed-pending-reboot")
	check("first reports")
	report("a1", "c1", "needed", "c2", "needed", "i1", "needed") // the same again
	check("a report that changes no figure")
	report("a1", "c1", "installed") // 2 -> 1 missing critical
	check("a count that stays above zero")
	report("a1", "c2", "downloaded", "i1", "installed") // still missing c2; important 1 -> 0
	check("an important update installed")
	report("a1", "c2", "installed")
	check("the last critical update installed")
	report("a2", "i1", "installed", "c1", "failed") // reboot done; failed (and missing) c1
	check("a reboot done and a failure")
	// Each figure the group counts moves alone once.
	for _, step := range [][2]string{
		{"c1", "needed"},                   // missing critical
		{"c1", "failed"},                   // failed (still missing critical)
		{"i1", "needed"},                   // missing important
		{"o1", "needed"},                   // missing other (not in the index)
		{"r1", "installed-pending-reboot"}, // pending reboot
		{"r1", "installed"},                // no reboot pending
	} {
		report("a3", step[0], step[1])
		check("a3 reports " + step[0] + " " + step[1])
	}
	report("a3", "c1", "installed", "c2", "installed", "i1", "installed", "o1", "installed")
	report("d1", "c1", "failed")
	report("d1", "c1", "installed")
	check("installs on a computer that missed nothing")
	must(t, s.MoveAgents(ctx, []string{"a2"}, "db"))
	report("a2", "c1", "installed")
	check("a move, then a report")
}

// testReportsGroupedMixed: a group of reports is all or nothing when one of
// them names an unknown agent, and a batch id twice in one group applies
// its first copy only.
func testReportsGroupedMixed(t *testing.T, s server.Store) {
	b, ok := s.(server.ReportBatcher)
	if !ok {
		t.Skip("this backend has no group commit (server.ReportBatcher); reports go one by one")
	}
	ctx := context.Background()
	must(t, s.CreateGroup(ctx, "web", t0))
	must(t, s.UpsertUpdates(ctx, []store.Update{
		{Vendor: "v", ID: "c1", Title: "c", Product: "p", Classification: "security", Severity: "critical", SHA256: "1", IndexedAt: t0}}))
	must(t, s.CreateAgent(ctx, agent("a1", "m1", "web")))
	must(t, s.CreateAgent(ctx, agent("a2", "m2", "web")))
	mk := func(agentID, batch, state string) *store.Report {
		return &store.Report{AgentID: agentID, BatchID: batch, ReceivedAt: t0.Add(time.Hour), Changes: []store.UpdateState{
			{Vendor: "v", UpdateID: "c1", State: state, UpdatedAt: t0.Add(time.Hour)},
			{Vendor: "v", UpdateID: "x" + batch, State: "failed", UpdatedAt: t0.Add(time.Hour)}}}
	}
	before, err := s.GroupCompliance(ctx, t0.Add(-time.Hour))
	must(t, err)
	_, err = b.ApplyReports(ctx, []*store.Report{mk("a2", "b1", "needed"), mk("nobody", "b1", "needed"), mk("a1", "b1", "needed")})
	wantErr(t, err, store.ErrNotFound)
	for _, id := range []string{"a1", "a2"} {
		a, err := s.Agent(ctx, id)
		must(t, err)
		st, err := s.AgentStates(ctx, id)
		must(t, err)
		ev, err := s.StateEvents(ctx, id, 10)
		must(t, err)
		if len(st) != 0 || len(ev) != 0 || !a.LastSeen.Equal(t0) {
			t.Fatalf("%s after a failed group: states %+v, events %+v, last seen %v", id, st, ev, a.LastSeen)
		}
	}
	after, err := s.GroupCompliance(ctx, t0.Add(-time.Hour))
	must(t, err)
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("a failed group moved the group figures: %+v, before %+v", after, before)
	}
	// The group again without the unknown agent, a2's batch twice with
	// different content: its first copy only.
	applied, err := b.ApplyReports(ctx, []*store.Report{mk("a2", "b1", "needed"), mk("a1", "b1", "needed"), mk("a2", "b1", "installed")})
	must(t, err)
	if fmt.Sprint(applied) != "[true true false]" {
		t.Fatalf("applied = %v, want [true true false]", applied)
	}
	for _, id := range []string{"a1", "a2"} {
		st, err := s.AgentStates(ctx, id)
		must(t, err)
		ev, err := s.StateEvents(ctx, id, 10)
		must(t, err)
		c, err := s.Computer(ctx, id)
		must(t, err)
		if len(st) != 2 || st[0].State != "needed" || len(ev) != 2 || c.MissingCritical != 1 || c.Failed != 1 {
			t.Fatalf("%s: states %+v, events %d, figures %+v; want c1 needed and xb1 failed from the first copy", id, st, len(ev), c.Compliance)
		}
	}
	gs, err := s.GroupCompliance(ctx, t0.Add(-time.Hour))
	must(t, err)
	if len(gs) != 1 || gs[0].Computers != 2 || gs[0].MissingCritical != 2 || gs[0].Failed != 2 || gs[0].Compliant != 0 {
		t.Fatalf("GroupCompliance = %+v, want 2 computers missing critical, both failed", gs)
	}
}
