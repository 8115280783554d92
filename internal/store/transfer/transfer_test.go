package transfer_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/store/postgres"
	"github.com/bulwarkhq/bulwark/internal/store/postgres/pgtest"
	"github.com/bulwarkhq/bulwark/internal/store/sqlite"
	"github.com/bulwarkhq/bulwark/internal/store/sqlstore"
	"github.com/bulwarkhq/bulwark/internal/store/transfer"
)

var t0 = time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)

// TestMain doubles as the child process the kill test starts: with
// TRANSFER_CHILD set it copies SQLITE to PG in small batches and exits.
func TestMain(m *testing.M) {
	if os.Getenv("TRANSFER_CHILD") != "" {
		// The child kills itself once a third of the agent states are
		// committed: in the middle of a table, every run.
		killAt := func(table string, done, total int64) {
			if table == "agent_states" && done >= total/3 && done < total {
				syscall.Kill(os.Getpid(), syscall.SIGKILL)
				select {}
			}
		}
		if err := copyPaths(os.Getenv("TRANSFER_SQLITE"), os.Getenv("TRANSFER_PG"), 20, killAt); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func copyPaths(path, url string, batch int, progress func(table string, done, total int64)) error {
	ctx := context.Background()
	src, err := sqlite.OpenSQL(ctx, path)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := postgres.Open(ctx, url)
	if err != nil {
		return err
	}
	defer dst.Close()
	_, err = transfer.Copy(ctx, src, dst.SQL(), transfer.Options{Batch: batch, Progress: progress})
	return err
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// populate fills a SQLite store through the store API with every kind of
// record, agents of them with two states each.
func populate(t testing.TB, path string, agents int) {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, path)
	must(t, err)
	defer db.Close()
	exp := t0.Add(time.Hour)
	must(t, db.CreateToken(ctx, &store.Token{ID: "t1", Kind: store.KindAPI, Name: "ops ☃", Hash: "h1", Role: store.RoleAdmin, CreatedAt: t0}))
	must(t, db.CreateToken(ctx, &store.Token{ID: "t2", Kind: store.KindEnroll, Hash: "h2", Group: "web", ClientGroup: true, MaxUses: 3, ExpiresAt: &exp, CreatedAt: t0}))
	must(t, db.RevokeToken(ctx, "t1", t0.Add(time.Minute)))
	must(t, db.CreateGroup(ctx, "web", t0))
	must(t, db.CreateGroup(ctx, "Zeta", t0))
	must(t, db.SetApproval(ctx, &store.Approval{Group: "web", Vendor: "v", UpdateID: "u1", Action: "install", Deadline: &exp, Rollout: 50, By: "t1", UpdatedAt: t0}))
	var reps []*store.Report
	for i := range agents {
		id := fmt.Sprintf("agt-%05d", i)
		must(t, db.CreateAgent(ctx, &store.Agent{ID: id, MachineID: fmt.Sprintf("m%d", i), Hostname: "host", OS: "debian 12", Arch: "amd64",
			Group: "web", CertSerial: "s", Status: store.AgentActive, EnrolledAt: t0, LastSeen: t0}))
		reps = append(reps, &store.Report{AgentID: id, BatchID: "b1", ReceivedAt: t0, Inventory: []byte(`{"os":"debian"}`),
			Changes: []store.UpdateState{{Vendor: "v", UpdateID: "u1", State: "installed", UpdatedAt: t0}, {Vendor: "v", UpdateID: "u2", State: "needed", Detail: "é", UpdatedAt: t0}}})
	}
	if len(reps) > 0 {
		_, err = db.ApplyReports(ctx, reps)
		must(t, err)
	}
	must(t, db.UpsertUpdates(ctx, []store.Update{{Vendor: "v", ID: "u1", Title: "T", Product: "p", Classification: "security", Severity: "critical", SHA256: "x", IndexedAt: t0}}))
	for range 3 {
		_, err := db.StartSync(ctx, &store.SyncRun{Vendor: "v", Trigger: "manual", StartedAt: t0})
		must(t, err)
	}
}

func openPG(t testing.TB, url string) *sqlstore.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), url)
	must(t, err)
	t.Cleanup(func() { db.Close() })
	return db.DB
}

// pair makes a populated SQLite source and an empty PostgreSQL target.
func pair(t testing.TB, agents int) (*sql.DB, *sqlstore.DB) {
	t.Helper()
	pg := pgtest.Start(t, pgtest.Options{})
	path := filepath.Join(t.TempDir(), "bulwark.db")
	populate(t, path, agents)
	src, err := sqlite.OpenSQL(context.Background(), path)
	must(t, err)
	t.Cleanup(func() { src.Close() })
	return src, openPG(t, pg.NewDatabase(t))
}

func TestCopy(t *testing.T) {
	ctx := context.Background()
	src, dst := pair(t, 50)
	tables, err := transfer.Copy(ctx, src, dst.SQL(), transfer.Options{Batch: 7})
	must(t, err)
	got := map[string]int64{}
	for _, tb := range tables {
		if tb.Rows != tb.Inserted {
			t.Errorf("table %s: %d rows, %d inserted", tb.Name, tb.Rows, tb.Inserted)
		}
		got[tb.Name] = tb.Rows
	}
	if got["agents"] != 50 || got["agent_states"] != 100 || got["reports"] != 50 || got["tokens"] != 2 || got["sync_runs"] != 3 {
		t.Fatalf("copied %v", got)
	}
	// Running it again inserts nothing and verifies.
	again, err := transfer.Copy(ctx, src, dst.SQL(), transfer.Options{})
	must(t, err)
	for _, tb := range again {
		if tb.Inserted != 0 {
			t.Errorf("second run inserted %d rows into %s", tb.Inserted, tb.Name)
		}
	}
	// The PostgreSQL store reads what SQLite held, and numbers new sync
	// runs after the copied ones.
	tok, err := dst.TokenByHash(ctx, "h1")
	must(t, err)
	if tok.Name != "ops ☃" || tok.RevokedAt == nil || !tok.RevokedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("token = %+v", tok)
	}
	st, err := dst.AgentStates(ctx, "agt-00049")
	must(t, err)
	if len(st) != 2 || st[1].Detail != "é" {
		t.Fatalf("states = %+v", st)
	}
	id, err := dst.StartSync(ctx, &store.SyncRun{Vendor: "v", Trigger: "manual", StartedAt: t0})
	must(t, err)
	if id != 4 {
		t.Fatalf("next sync id = %d, want 4", id)
	}
	// Verification sees a row the source does not have...
	if err := transfer.Verify(ctx, src, dst.SQL()); !errors.Is(err, transfer.ErrMismatch) {
		t.Fatalf("Verify with an extra target row = %v", err)
	}
	// ...and a value changed in the target.
	_, err = dst.SQL().Exec(`DELETE FROM sync_runs WHERE id = 4`)
	must(t, err)
	must(t, transfer.Verify(ctx, src, dst.SQL()))
	_, err = dst.SQL().Exec(`UPDATE agent_states SET state = 'failed' WHERE agent_id = 'agt-00017' AND update_id = 'u2'`)
	must(t, err)
	if err := transfer.Verify(ctx, src, dst.SQL()); !errors.Is(err, transfer.ErrMismatch) {
		t.Fatalf("Verify with a changed target row = %v", err)
	}
}

// TestCopyRefusesNonEmptyTarget: a PostgreSQL database a server already
// used (its own admin token) is not silently merged with the SQLite one.
func TestCopyRefusesNonEmptyTarget(t *testing.T) {
	ctx := context.Background()
	src, dst := pair(t, 3)
	must(t, dst.CreateToken(ctx, &store.Token{ID: "other", Kind: store.KindAPI, Hash: "hx", Role: store.RoleAdmin, CreatedAt: t0}))
	if _, err := transfer.Copy(ctx, src, dst.SQL(), transfer.Options{}); !errors.Is(err, transfer.ErrMismatch) {
		t.Fatalf("Copy into a used database = %v", err)
	}
}

// TestCopySurvivesKill kills a copy (a child process) with SIGKILL while
// rows are half copied (the child kills itself after a committed batch a
// third of the way through the agent states), then runs it again: the
// result verifies row by row.
func TestCopySurvivesKill(t *testing.T) {
	ctx := context.Background()
	pg := pgtest.Start(t, pgtest.Options{})
	path := filepath.Join(t.TempDir(), "bulwark.db")
	const agents = 3000
	populate(t, path, agents)
	url := pg.NewDatabase(t)
	dst := openPG(t, url)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "TRANSFER_CHILD=1", "TRANSFER_SQLITE="+path, "TRANSFER_PG="+url)
	cmd.Stderr = os.Stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("the copy was not killed in the middle: %v", err)
	}
	var n int64
	must(t, dst.SQL().QueryRow(`SELECT COUNT(*) FROM agent_states`).Scan(&n))
	if n == 0 || n >= 2*agents {
		t.Fatalf("killed with %d of %d states copied: not in the middle", n, 2*agents)
	}
	t.Logf("killed with %d of %d states copied", n, 2*agents)
	src, err := sqlite.OpenSQL(ctx, path)
	must(t, err)
	defer src.Close()
	if err := transfer.Verify(ctx, src, dst.SQL()); !errors.Is(err, transfer.ErrMismatch) {
		t.Fatalf("a half copy verified: %v", err)
	}
	must(t, copyPaths(path, url, 500, nil))
	must(t, transfer.Verify(ctx, src, dst.SQL()))
}
