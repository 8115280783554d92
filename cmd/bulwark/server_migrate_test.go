package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/store/postgres"
	"github.com/bulwarkhq/bulwark/internal/store/postgres/pgtest"
	"github.com/bulwarkhq/bulwark/internal/store/sqlite"
)

// TestServerMigrate runs `bulwark server migrate` on a data directory and
// reads the records back from PostgreSQL.
func TestServerMigrate(t *testing.T) {
	ctx := context.Background()
	pg := pgtest.Start(t, pgtest.Options{})
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "bulwark.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateGroup(ctx, "web", time.Now()); err != nil {
		t.Fatal(err)
	}
	db.Close()
	url := pg.NewDatabase(t)
	var out, errb bytes.Buffer
	if err := run(ctx, []string{"server", "migrate", "--data-dir", dir, "--to", url}, nil, &out, &errb); err != nil {
		t.Fatalf("migrate: %v\n%s%s", err, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "Verified row by row") || !strings.Contains(out.String(), "groups") {
		t.Fatalf("output:\n%s", out.String())
	}
	p, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	gs, err := p.ListGroups(ctx)
	if err != nil || len(gs) != 1 || gs[0].Name != "web" {
		t.Fatalf("groups in PostgreSQL: %v, %v", gs, err)
	}
	// A second run finds everything in place.
	out.Reset()
	if err := run(ctx, []string{"server", "migrate", "--data-dir", dir, "--to", url}, nil, &out, &errb); err != nil || !strings.Contains(out.String(), "(0 new)") {
		t.Fatalf("second run: %v\n%s", err, out.String())
	}
	// -o json and -o yaml print the tables, and parse.
	for _, f := range []string{"json", "yaml"} {
		out.Reset()
		if err := run(ctx, []string{"server", "migrate", "--data-dir", dir, "--to", url, "-o", f}, nil, &out, &errb); err != nil {
			t.Fatalf("-o %s: %v", f, err)
		}
		if err := parseDocument(f, out.Bytes()); err != nil || !strings.Contains(out.String(), "verified") {
			t.Fatalf("-o %s: %v\n%s", f, err, out.String())
		}
	}
	// Bad input names what is wrong.
	for _, args := range [][]string{{"--to", "mysql://x"}, {"--to", url, "--data-dir", filepath.Join(dir, "nope")}} {
		err := run(ctx, append([]string{"server", "migrate", "--data-dir", dir}, args...), nil, &out, &errb)
		if err == nil {
			t.Errorf("migrate %v succeeded", args)
		}
	}
}
