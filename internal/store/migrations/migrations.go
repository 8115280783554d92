// Package migrations holds the server database's schema changes for every
// backend and runs them with goose.
//
// Each dialect runs the union of two directories: common/ (portable SQL that
// SQLite and PostgreSQL both accept) and its own sqlite/ or postgres/
// (dialect-specific files, always written as a pair with the same version
// number). FS refuses a version that only one dialect would run, so a schema
// change can never reach one backend and not the other.
//
// Versions are not sequential across the team: each area keeps its own range
// (see docs/ARCHITECTURE.md, "Store"), so goose runs with out-of-order
// migrations allowed: a database that already has a higher version still
// gets a lower one that landed later.
//
// It must not hold queries: only schema changes.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strings"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

// Dialects.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

//go:embed common sqlite postgres
var files embed.FS

// FS returns the migrations dialect runs: common/ with the dialect's own
// directory laid over it. A version found in both common/ and a dialect
// directory, or in one dialect directory and not the other, is an error that
// names the file.
func FS(dialect string) (fs.FS, error) {
	if dialect != SQLite && dialect != Postgres {
		return nil, fmt.Errorf("migrations: unknown dialect %q (valid: %s, %s)", dialect, SQLite, Postgres)
	}
	common, err := versions("common")
	if err != nil {
		return nil, err
	}
	own := map[string]map[int64]string{}
	for _, d := range []string{SQLite, Postgres} {
		if own[d], err = versions(d); err != nil {
			return nil, err
		}
	}
	u := &union{byName: map[string]string{}}
	for v, name := range common {
		u.byName[name] = "common"
		for _, d := range []string{SQLite, Postgres} {
			if other, ok := own[d][v]; ok {
				return nil, fmt.Errorf("migrations: version %d is both common/%s and %s/%s: a version is either portable (common/) or a sqlite/ and postgres/ pair", v, name, d, other)
			}
		}
	}
	for v, name := range own[SQLite] {
		if _, ok := own[Postgres][v]; !ok {
			return nil, fmt.Errorf("migrations: sqlite/%s has no postgres/ twin with version %d: write both dialects (or put portable SQL in common/)", name, v)
		}
	}
	for v, name := range own[Postgres] {
		if _, ok := own[SQLite][v]; !ok {
			return nil, fmt.Errorf("migrations: postgres/%s has no sqlite/ twin with version %d: write both dialects (or put portable SQL in common/)", name, v)
		}
	}
	for _, name := range own[dialect] {
		u.byName[name] = dialect
	}
	return u, nil
}

// versions maps version to file name for the *.sql files of one directory.
func versions(dir string) (map[int64]string, error) {
	ents, err := fs.ReadDir(files, dir)
	if err != nil {
		return nil, err
	}
	out := map[int64]string{}
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		v, err := goose.NumericComponent(e.Name())
		if err != nil {
			return nil, fmt.Errorf("migrations: %s/%s: name must be NNNNNN_what.sql: %w", dir, e.Name(), err)
		}
		if prev, ok := out[v]; ok {
			return nil, fmt.Errorf("migrations: %s/%s and %s/%s share version %d", dir, prev, dir, e.Name(), v)
		}
		out[v] = e.Name()
	}
	return out, nil
}

// union is a flat directory of *.sql files drawn from several directories
// of the embedded tree.
type union struct {
	byName map[string]string // file name -> directory
}

func (u *union) Open(name string) (fs.File, error) {
	if name == "." {
		return files.Open(SQLite) // only ever listed through ReadDir
	}
	dir, ok := u.byName[name]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return files.Open(path.Join(dir, name))
}

func (u *union) ReadDir(name string) ([]fs.DirEntry, error) {
	if name != "." {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrNotExist}
	}
	var out []fs.DirEntry
	for _, dir := range []string{"common", SQLite, Postgres} {
		ents, err := fs.ReadDir(files, dir)
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			if u.byName[e.Name()] == dir {
				out = append(out, e)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out, nil
}

// Up migrates db, of the given dialect, to the newest schema. Versions
// missing below the database's current one are applied too (out of order).
// On PostgreSQL a session advisory lock keeps replicas that start at once
// from migrating twice.
func Up(ctx context.Context, db *sql.DB, dialect string) error {
	fsys, err := FS(dialect)
	if err != nil {
		return err
	}
	return up(ctx, db, dialect, fsys)
}

func up(ctx context.Context, db *sql.DB, dialect string, fsys fs.FS) error {
	opts := []goose.ProviderOption{goose.WithAllowOutofOrder(true), goose.WithDisableGlobalRegistry(true)}
	gd := goose.DialectSQLite3
	if dialect == Postgres {
		gd = goose.DialectPostgres
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300)) // retry each second for 5 minutes
		if err != nil {
			return err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(gd, db, fsys, opts...)
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// Versions lists every version the dialect runs, ascending.
func Versions(dialect string) ([]int64, error) {
	fsys, err := FS(dialect)
	if err != nil {
		return nil, err
	}
	ents, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, err
	}
	var out []int64
	for _, e := range ents {
		v, err := goose.NumericComponent(e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	slices.Sort(out)
	return out, nil
}
