package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/server"
	"github.com/bulwarkhq/bulwark/internal/store/sqlite"
	"github.com/bulwarkhq/bulwark/internal/store/storetest"
)

var _ server.Store = (*sqlite.DB)(nil)

func open(t testing.TB) server.Store {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "bulwark.db"))
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func TestConformance(t *testing.T) { storetest.Run(t, open) }

// TestReopen checks that migrations run once and data survives a restart.
func TestReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "bulwark.db")
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateGroup(ctx, "web", storetestTime()); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	gs, err := db.ListGroups(ctx)
	if err != nil || len(gs) != 1 {
		t.Fatalf("after reopen: %v, %v", gs, err)
	}
	if _, err := os.Stat(path + "-wal"); err != nil {
		t.Errorf("database not in WAL mode: %v", err)
	}
}

func storetestTime() (t0 time.Time) { return time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC) }
