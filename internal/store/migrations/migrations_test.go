package migrations

import (
	"context"
	"database/sql"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	_ "modernc.org/sqlite"
)

// TestDialectsRunTheSameVersions is the rule every schema change keeps: both
// backends run the same list of versions.
func TestDialectsRunTheSameVersions(t *testing.T) {
	s, err := Versions(SQLite)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Versions(Postgres)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s, p) || len(s) == 0 || s[0] != 1 {
		t.Fatalf("sqlite runs %v, postgres %v", s, p)
	}
}

func TestUnknownDialect(t *testing.T) {
	if _, err := FS("mysql"); err == nil || !strings.Contains(err.Error(), "valid: sqlite, postgres") {
		t.Fatalf("FS(mysql) = %v", err)
	}
}

// TestOutOfOrder lands a higher version first (an area whose migration
// reached main earlier) and then a lower one: the lower one still runs.
func TestOutOfOrder(t *testing.T) {
	ctx := context.Background()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "x.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	mig := func(table string) *fstest.MapFile {
		return &fstest.MapFile{Data: []byte("-- +goose Up\nCREATE TABLE " + table + " (id INTEGER);\n-- +goose Down\nDROP TABLE " + table + ";\n")}
	}
	first := fstest.MapFS{"00001_init.sql": mig("a"), "001400_fleet.sql": mig("c")}
	if err := up(ctx, db, SQLite, first); err != nil {
		t.Fatal(err)
	}
	later := fstest.MapFS{"00001_init.sql": mig("a"), "000900_console.sql": mig("b"), "001400_fleet.sql": mig("c")}
	if err := up(ctx, db, SQLite, later); err != nil {
		t.Fatalf("version 900 after 1400 refused: %v", err)
	}
	if _, err := db.Exec(`INSERT INTO b (id) VALUES (1)`); err != nil {
		t.Fatalf("version 900 did not run: %v", err)
	}
}
