package sqlite_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/server"
	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/store/sqlite"
	"github.com/bulwarkhq/bulwark/internal/store/sqlstore"
	"github.com/bulwarkhq/bulwark/internal/store/storetest"
)

var _ server.Store = (*sqlstore.DB)(nil)

func open(t testing.TB) server.Store { return openAt(t, filepath.Join(t.TempDir(), "bulwark.db")) }

// openAt opens (migrating) the database at path.
func openAt(t testing.TB, path string) *sqlstore.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path)
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
	db := openAt(t, path)
	if err := db.CreateGroup(ctx, "web", storetestTime()); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db = openAt(t, path)
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

// TestOpensDatabaseFromBeforeTheDialectSplit opens a database whose version
// 1 already made sync_runs (before version 2 held it) and has no version 2.
func TestOpensDatabaseFromBeforeTheDialectSplit(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "bulwark.db")
	db := openAt(t, path)
	if _, err := db.StartSync(ctx, &store.SyncRun{Vendor: "v", Trigger: "manual", StartedAt: storetestTime()}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.SQL().Exec(`DELETE FROM goose_db_version WHERE version_id = 2`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db = openAt(t, path)
	defer db.Close()
	if runs, err := db.ListSyncs(ctx, 0); err != nil || len(runs) != 1 {
		t.Fatalf("sync history after migration: %v, %v", runs, err)
	}
}

// TestDatabaseFilesPrivate (F17): the database, its WAL and shared-memory
// files are 0600 even under a permissive umask, and a database an older
// server left 0644 is tightened at open.
func TestDatabaseFilesPrivate(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := t.TempDir()
	path := filepath.Join(dir, "bulwark.db")
	db := openAt(t, path)
	if err := db.CreateGroup(context.Background(), "web", storetestTime()); err != nil {
		t.Fatal(err)
	}
	check := func() {
		t.Helper()
		for _, p := range []string{path, path + "-wal", path + "-shm"} {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatalf("%s: %v", filepath.Base(p), err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("%s: mode %04o, want 0600", filepath.Base(p), fi.Mode().Perm())
			}
		}
	}
	check()
	db.Close()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		os.Chmod(p, 0o644)
	}
	db = openAt(t, path)
	defer db.Close()
	check()
}

// TestOpenRefusesNonRegularFile: a database path that names a device, a FIFO
// or a directory (say --database /dev/null) is refused by name, and its mode
// is left as it was: making the database private must not chmod a device
// node that every user of the machine needs (as root, it would).
func TestOpenRefusesNonRegularFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.db")
	if err := syscall.Mkfifo(fifo, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(fifo, 0o666); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "sub.db")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	wal := filepath.Join(dir, "wal.db")
	if err := syscall.Mkfifo(wal+"-wal", 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(wal+"-wal", 0o666); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ path, bad string }{{fifo, fifo}, {sub, sub}, {wal, wal + "-wal"}} {
		before, err := os.Stat(tt.bad)
		if err != nil {
			t.Fatal(err)
		}
		db, err := sqlite.Open(context.Background(), tt.path)
		if err == nil {
			db.Close()
			t.Fatalf("Open(%s) succeeded, want it refused", tt.path)
		}
		if !strings.Contains(err.Error(), tt.bad) || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("Open(%s): %v, want the path %s named as not a regular file", tt.path, err, tt.bad)
		}
		after, err := os.Stat(tt.bad)
		if err != nil {
			t.Fatal(err)
		}
		if after.Mode() != before.Mode() {
			t.Errorf("%s: mode %v after the refused open, was %v", tt.bad, after.Mode(), before.Mode())
		}
	}
	if _, err := os.Stat(wal); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s created by a refused open (%v)", wal, err)
	}
}
