// Package sqlite is the server's default store: one SQLite database file
// (modernc.org/sqlite, no cgo) in WAL mode with a busy timeout and a single
// connection, migrated with goose (store/migrations) and queried through the
// shared database/sql store (store/sqlstore).
//
// It must not hold queries of its own: queries are written once in sqlstore
// for both backends.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/bulwarkhq/bulwark/internal/store/migrations"
	"github.com/bulwarkhq/bulwark/internal/store/sqlstore"
)

// Dialect is SQLite's sqlstore dialect.
var Dialect = sqlstore.Dialect{
	Name: migrations.SQLite,
	IsUnique: func(err error) bool {
		return err != nil && (strings.Contains(err.Error(), "UNIQUE constraint failed") || strings.Contains(err.Error(), "PRIMARY KEY"))
	},
	IsForeignKey: func(err error) bool {
		return err != nil && strings.Contains(err.Error(), "FOREIGN KEY constraint failed")
	},
}

// Open opens (creating if needed) the database at path and migrates it to
// the newest schema.
func Open(ctx context.Context, path string) (*sqlstore.DB, error) {
	db, err := OpenSQL(ctx, path)
	if err != nil {
		return nil, err
	}
	if err := migrations.Up(ctx, db, migrations.SQLite); err != nil {
		db.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	rdb, err := openReader(ctx, path)
	if err != nil {
		db.Close()
		return nil, err
	}
	st := sqlstore.New(db, Dialect).WithReader(rdb)
	if err := st.Prepare(ctx); err != nil {
		st.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return st, nil
}

// readers is the size of the read-only pool: in WAL mode readers do not
// wait for the one writer, so a check-in's lookups go on while a group
// commit of reports is written.
const readers = 4

// openReader opens the read-only pool of the hot paths' reads
// (sqlstore.DB.WithReader).
func openReader(ctx context.Context, path string) (*sql.DB, error) {
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "query_only(1)", "foreign_keys(1)"} {
		q.Add("_pragma", p)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db.SetMaxOpenConns(readers)
	db.SetMaxIdleConns(readers)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return db, nil
}

// OpenSQL opens the database at path with the server's settings, without
// migrating it.
func OpenSQL(ctx context.Context, path string) (*sql.DB, error) {
	if err := private(path); err != nil {
		return nil, err
	}
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "foreign_keys(1)", "synchronous(NORMAL)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	// One connection: SQLite has one writer anyway, and this keeps writes
	// from ever seeing SQLITE_BUSY inside the process.
	db.SetMaxOpenConns(1)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return db, nil
}

// private makes the database file 0600 before SQLite opens it (creating it
// empty if needed), and tightens the files of an older server: the
// database holds token hashes and machine inventories, and SQLite creates
// its -wal and -shm files with the database file's mode. Anything there
// that is not a regular file (a device such as /dev/null, a FIFO, a
// directory) is refused before any change: chmod would otherwise change
// the mode of whatever the path names, for every user of the machine.
func private(path string) error {
	files := []string{path, path + "-wal", path + "-shm", path + "-journal"}
	for _, p := range files {
		fi, err := os.Stat(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("open %s: %w", p, err)
		}
		if !fi.Mode().IsRegular() {
			return fmt.Errorf("open %s: not a regular file (%s); the SQLite database needs a file path, such as DATA/bulwark.db", p, fi.Mode().Type())
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	f.Close()
	for _, p := range files {
		if err := os.Chmod(p, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("make %s private: %w", p, err)
		}
	}
	return nil
}
