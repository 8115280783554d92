package postgres_test

import (
	"context"
	"sync"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/server"
	"github.com/bulwarkhq/bulwark/internal/store/postgres"
	"github.com/bulwarkhq/bulwark/internal/store/postgres/pgtest"
	"github.com/bulwarkhq/bulwark/internal/store/storetest"
)

// TestConformance runs the storetest suite against a real PostgreSQL, one
// fresh database per test.
func TestConformance(t *testing.T) {
	pg := pgtest.Start(t, pgtest.Options{})
	storetest.Run(t, func(t testing.TB) server.Store {
		db, err := postgres.Open(context.Background(), pg.NewDatabase(t))
		if err != nil {
			t.Fatal(err)
		}
		return db
	})
}

// TestMigrateConcurrently starts several stores on one new database at once,
// as replicas do: the advisory lock lets exactly one migrate and the others
// find the schema in place.
func TestMigrateConcurrently(t *testing.T) {
	pg := pgtest.Start(t, pgtest.Options{})
	url := pg.NewDatabase(t)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			db, err := postgres.Open(context.Background(), url)
			if err != nil {
				t.Error(err)
				return
			}
			db.Close()
		})
	}
	wg.Wait()
}

func TestOpenRefusesOtherURLs(t *testing.T) {
	for _, bad := range []string{"mysql://x/y", "/var/lib/bulwark/bulwark.db", ""} {
		if _, err := postgres.Open(context.Background(), bad); err == nil {
			t.Errorf("Open(%q) succeeded", bad)
		}
	}
}

func TestRedact(t *testing.T) {
	got := postgres.Redact("postgres://bulwark:s3cret@db.internal:5432/bulwark")
	if got != "postgres://bulwark:xxxxx@db.internal:5432/bulwark" {
		t.Fatalf("Redact = %q", got)
	}
}
