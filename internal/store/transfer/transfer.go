// Package transfer moves a server's records from its SQLite database to a
// PostgreSQL database (`bulwark server migrate --to postgres://…`) and then
// verifies the copy row by row.
//
// It copies every table of the source schema (whatever areas added, found
// through SQLite's catalogue), parents before children by their foreign
// keys, in batches that each commit as one transaction and insert with
// ON CONFLICT DO NOTHING: a copy killed at any point is completed by running
// it again. The source is read inside one write-locked transaction, so a
// server still running against it cannot change it mid-copy (its writes wait
// and fail rather than being lost silently).
//
// It must not change the source, nor decide what a table means: it copies
// and compares values.
package transfer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Table is what was copied and verified of one table.
type Table struct {
	Name     string
	Rows     int64 // rows in the source
	Inserted int64 // rows this run inserted (0 for rows an earlier run copied)
}

// Options tune a copy.
type Options struct {
	// Batch is how many rows go in one target transaction (default 2000).
	Batch int
	// Progress, when set, is told after each committed batch.
	Progress func(table string, done, total int64)
}

// skipped are tables the copy leaves alone: each database's own migration
// bookkeeping, and group_compliance and group_seen, which the target's
// triggers fill as the agents are copied (migrations 000902-5).
var skipped = map[string]bool{"goose_db_version": true, "group_compliance": true, "group_seen": true}

type column struct {
	name string
	pk   int  // position in the primary key, 0 = not part
	text bool // target column is text (byte values become strings)
}

type table struct {
	name string
	cols []column
	deps []string // tables its foreign keys refer to
}

// Copy copies every table of the SQLite database src (opened with
// sqlite.OpenSQL) into the PostgreSQL
// database dst (both migrated to the same schema) and verifies the result;
// it returns the tables in copy order.
func Copy(ctx context.Context, src, dst *sql.DB, opts Options) ([]Table, error) {
	if opts.Batch <= 0 {
		opts.Batch = 2000
	}
	// src comes from sqlite.OpenSQL, whose transactions begin IMMEDIATE:
	// this one holds SQLite's write lock until the copy ends, so the source
	// cannot change under it.
	tx, err := src.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	defer tx.Rollback()
	tables, err := schema(ctx, tx, dst)
	if err != nil {
		return nil, err
	}
	var out []Table
	for _, t := range tables {
		r, err := copyTable(ctx, tx, dst, t, opts)
		if err != nil {
			return out, fmt.Errorf("table %s: %w", t.name, err)
		}
		out = append(out, r)
	}
	if err := resetIdentities(ctx, dst, tables); err != nil {
		return out, err
	}
	if err := verify(ctx, tx, dst, tables); err != nil {
		return out, err
	}
	return out, nil
}

// Verify compares every table of src and dst row by row.
func Verify(ctx context.Context, src, dst *sql.DB) error {
	tx, err := src.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer tx.Rollback()
	tables, err := schema(ctx, tx, dst)
	if err != nil {
		return err
	}
	return verify(ctx, tx, dst, tables)
}

// schema reads the source's tables and columns, checks the target has the
// same, and orders the tables parents first.
func schema(ctx context.Context, src *sql.Tx, dst *sql.DB) ([]table, error) {
	names, err := strings1(ctx, src, `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("source tables: %w", err)
	}
	byName := map[string]*table{}
	var order []string
	for _, n := range names {
		if skipped[n] {
			continue
		}
		t := &table{name: n}
		rows, err := src.QueryContext(ctx, `SELECT name, pk FROM pragma_table_info($1) ORDER BY cid`, n)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var c column
			if err := rows.Scan(&c.name, &c.pk); err != nil {
				rows.Close()
				return nil, err
			}
			t.cols = append(t.cols, c)
		}
		rows.Close()
		if t.deps, err = strings1(ctx, src, `SELECT DISTINCT "table" FROM pragma_foreign_key_list($1)`, n); err != nil {
			return nil, err
		}
		types := map[string]string{}
		rows, err = dst.QueryContext(ctx, `SELECT column_name, data_type FROM information_schema.columns
			WHERE table_schema = current_schema() AND table_name = $1`, n)
		if err != nil {
			return nil, fmt.Errorf("target columns of %s: %w", n, err)
		}
		for rows.Next() {
			var c, ty string
			if err := rows.Scan(&c, &ty); err != nil {
				rows.Close()
				return nil, err
			}
			types[c] = ty
		}
		rows.Close()
		if len(types) != len(t.cols) {
			return nil, fmt.Errorf("table %s: the source has %d columns, the target %d: migrate both to the same bulwark version first", n, len(t.cols), len(types))
		}
		for i, c := range t.cols {
			ty, ok := types[c.name]
			if !ok {
				return nil, fmt.Errorf("table %s: column %s is missing in the target: migrate both to the same bulwark version first", n, c.name)
			}
			t.cols[i].text = ty == "text" || strings.HasPrefix(ty, "character")
		}
		byName[n] = t
		order = append(order, n)
	}
	// Parents first (depth-first over foreign keys).
	var out []table
	state := map[string]int{}
	var visit func(n string) error
	visit = func(n string) error {
		switch state[n] {
		case 1:
			return fmt.Errorf("tables: a foreign key cycle through %s", n)
		case 2:
			return nil
		}
		state[n] = 1
		for _, d := range byName[n].deps {
			if byName[d] != nil && d != n {
				if err := visit(d); err != nil {
					return err
				}
			}
		}
		state[n] = 2
		out = append(out, *byName[n])
		return nil
	}
	for _, n := range order {
		if err := visit(n); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func strings1(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, query string, args ...any) ([]string, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

func quote(id string) string { return `"` + strings.ReplaceAll(id, `"`, `""`) + `"` }

func (t table) colList() string {
	var q []string
	for _, c := range t.cols {
		q = append(q, quote(c.name))
	}
	return strings.Join(q, ", ")
}

// orderBy sorts by the primary key (all columns when there is none); text
// compares bytewise on both sides (SQLite's BINARY, PostgreSQL's "C").
func (t table) orderBy(pg bool) string {
	var key []column
	for _, c := range t.cols {
		if c.pk > 0 {
			key = append(key, c)
		}
	}
	slices.SortFunc(key, func(a, b column) int { return a.pk - b.pk })
	if len(key) == 0 {
		key = t.cols
	}
	var q []string
	for _, c := range key {
		s := quote(c.name)
		if pg && c.text {
			s += ` COLLATE "C"`
		}
		q = append(q, s)
	}
	return strings.Join(q, ", ")
}

func copyTable(ctx context.Context, src *sql.Tx, dst *sql.DB, t table, opts Options) (Table, error) {
	res := Table{Name: t.name}
	if err := src.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+quote(t.name)).Scan(&res.Rows); err != nil {
		return res, err
	}
	rows, err := src.QueryContext(ctx, `SELECT `+t.colList()+` FROM `+quote(t.name)+` ORDER BY `+t.orderBy(false))
	if err != nil {
		return res, err
	}
	defer rows.Close()
	n := len(t.cols)
	per := min(opts.Batch, 65535/n) // PostgreSQL takes at most 65535 parameters
	var args []any
	var done int64
	flush := func() error {
		if len(args) == 0 {
			return nil
		}
		var b strings.Builder
		b.WriteString(`INSERT INTO ` + quote(t.name) + ` (` + t.colList() + `) VALUES `)
		for r := range len(args) / n {
			if r > 0 {
				b.WriteString(", ")
			}
			b.WriteByte('(')
			for c := range n {
				if c > 0 {
					b.WriteString(", ")
				}
				b.WriteString("$" + strconv.Itoa(r*n+c+1))
			}
			b.WriteByte(')')
		}
		b.WriteString(` ON CONFLICT DO NOTHING`)
		r, err := dst.ExecContext(ctx, b.String(), args...)
		if err != nil {
			return err
		}
		k, err := r.RowsAffected()
		if err != nil {
			return err
		}
		res.Inserted += k
		done += int64(len(args) / n)
		args = args[:0]
		if opts.Progress != nil {
			opts.Progress(t.name, done, res.Rows)
		}
		return nil
	}
	vals := make([]any, n)
	ptrs := make([]any, n)
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return res, err
		}
		for i, v := range vals {
			if b, ok := v.([]byte); ok && t.cols[i].text {
				v = string(b)
			}
			args = append(args, v)
		}
		if len(args)/n >= per {
			if err := flush(); err != nil {
				return res, err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return res, err
	}
	return res, flush()
}

// resetIdentities moves each identity column's sequence past the copied
// values, so the next row PostgreSQL numbers does not collide.
func resetIdentities(ctx context.Context, dst *sql.DB, tables []table) error {
	for _, t := range tables {
		ids, err := strings1(ctx, dst, `SELECT column_name FROM information_schema.columns
			WHERE table_schema = current_schema() AND table_name = $1 AND is_identity = 'YES'`, t.name)
		if err != nil {
			return err
		}
		for _, c := range ids {
			if _, err := dst.ExecContext(ctx, `SELECT setval(pg_get_serial_sequence($1, $2),
				COALESCE((SELECT MAX(`+quote(c)+`) FROM `+quote(t.name)+`), 0) + 1, false)`, quote(t.name), c); err != nil {
				return fmt.Errorf("table %s: sequence of %s: %w", t.name, c, err)
			}
		}
	}
	return nil
}

// ErrMismatch is returned when the target differs from the source.
var ErrMismatch = errors.New("target differs from source")

// verify reads every table from both sides in the same order and compares
// each row.
func verify(ctx context.Context, src *sql.Tx, dst *sql.DB, tables []table) error {
	for _, t := range tables {
		if err := verifyTable(ctx, src, dst, t); err != nil {
			return fmt.Errorf("verify %s: %w", t.name, err)
		}
	}
	return nil
}

func verifyTable(ctx context.Context, src *sql.Tx, dst *sql.DB, t table) error {
	sel := `SELECT ` + t.colList() + ` FROM ` + quote(t.name) + ` ORDER BY `
	a, err := src.QueryContext(ctx, sel+t.orderBy(false))
	if err != nil {
		return err
	}
	defer a.Close()
	b, err := dst.QueryContext(ctx, sel+t.orderBy(true))
	if err != nil {
		return err
	}
	defer b.Close()
	n := len(t.cols)
	row := func(rows *sql.Rows) ([]string, error) {
		vals := make([]any, n)
		ptrs := make([]any, n)
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		out := make([]string, n)
		for i, v := range vals {
			out[i] = canon(v)
		}
		return out, nil
	}
	for i := int64(1); ; i++ {
		moreA, moreB := a.Next(), b.Next()
		if !moreA || !moreB {
			if err := errors.Join(a.Err(), b.Err()); err != nil {
				return err
			}
			switch {
			case moreA:
				ra, _ := row(a)
				return fmt.Errorf("%w: row %d %v is missing from the target", ErrMismatch, i, ra)
			case moreB:
				rb, _ := row(b)
				return fmt.Errorf("%w: the target has row %v that the source does not", ErrMismatch, rb)
			}
			return nil
		}
		ra, err := row(a)
		if err != nil {
			return err
		}
		rb, err := row(b)
		if err != nil {
			return err
		}
		if !slices.Equal(ra, rb) {
			return fmt.Errorf("%w: row %d: source %v, target %v", ErrMismatch, i, ra, rb)
		}
	}
}

// canon is a value's comparable form: drivers differ in Go types (int32 or
// int64, []byte or string) for the same stored value.
func canon(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case []byte:
		return strconv.Quote(string(x))
	case string:
		return strconv.Quote(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case int32:
		return strconv.FormatInt(int64(x), 10)
	case bool:
		if x {
			return "1"
		}
		return "0"
	default:
		return fmt.Sprintf("%T(%v)", v, v)
	}
}
