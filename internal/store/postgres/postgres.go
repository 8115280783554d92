// Package postgres is the server's PostgreSQL store (pgx/v5 through
// database/sql), for deployments that outgrow one SQLite file or run several
// server replicas on one database. It is migrated with goose
// (store/migrations, under a session advisory lock so replicas starting at
// once migrate once) and queried through the shared store (store/sqlstore).
//
// It must not hold queries of its own: queries are written once in sqlstore
// for both backends.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/bulwarkhq/bulwark/internal/store/migrations"
	"github.com/bulwarkhq/bulwark/internal/store/sqlstore"
)

// PostgreSQL error codes (SQLSTATE class 23, integrity constraint violation).
const (
	codeUnique     = "23505"
	codeForeignKey = "23503"
)

func hasCode(err error, code string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == code
}

// Dialect is PostgreSQL's sqlstore dialect.
var Dialect = sqlstore.Dialect{
	Name:         migrations.Postgres,
	IsUnique:     func(err error) bool { return hasCode(err, codeUnique) },
	IsForeignKey: func(err error) bool { return hasCode(err, codeForeignKey) },
}

// IsURL reports whether a --database value names a PostgreSQL database.
func IsURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// Redact returns a connection URL without its password, for logs and errors.
func Redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "postgres://(unparsable URL)"
	}
	return u.Redacted()
}

// DB is the PostgreSQL store: the shared queries plus what replicas on one
// database coordinate with (the site signing lock, change notifications).
type DB struct {
	*sqlstore.DB
	cfg *pgx.ConnConfig
	// Logf reports a lost notification connection (nil: silent).
	Logf func(format string, args ...any)
}

func (d *DB) log(err error) {
	if d.Logf != nil && err != nil {
		d.Logf("site notifications: %v; reconnecting", err)
	}
}

// Open connects to the database at dsn (postgres://user[:pass]@host[:port]/db?...)
// and migrates it to the newest schema.
func Open(ctx context.Context, dsn string) (*DB, error) {
	db, err := OpenSQL(ctx, dsn)
	if err != nil {
		return nil, err
	}
	if err := migrations.Up(ctx, db, migrations.Postgres); err != nil {
		db.Close()
		return nil, fmt.Errorf("%s: %w", Redact(dsn), err)
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		db.Close()
		return nil, err
	}
	st := sqlstore.New(db, Dialect)
	if err := st.Prepare(ctx); err != nil {
		st.Close()
		return nil, fmt.Errorf("%s: %w", Redact(dsn), err)
	}
	return &DB{DB: st, cfg: cfg}, nil
}

// OpenSQL connects to dsn without migrating.
func OpenSQL(ctx context.Context, dsn string) (*sql.DB, error) {
	if !IsURL(dsn) {
		return nil, fmt.Errorf("database %q: want a postgres:// or postgresql:// URL", Redact(dsn))
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", Redact(dsn), err)
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(16)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("database %s: %w", Redact(dsn), err)
	}
	return db, nil
}
