package postgres_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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

// TestSiteLockAlone: the advisory lock by itself (no file lock, two
// separate connection pools as two replicas have) lets one holder at a
// time into the site repository's critical section: a second LockSite
// waits until the first unlocks, and concurrent holders never overlap.
func TestSiteLockAlone(t *testing.T) {
	pg := pgtest.Start(t, pgtest.Options{})
	url := pg.NewDatabase(t)
	var replicas [2]*postgres.DB
	for i := range replicas {
		db, err := postgres.Open(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		replicas[i] = db
	}
	ctx := context.Background()
	unlock, err := replicas[0].LockSite(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan func(), 1)
	go func() {
		u, err := replicas[1].LockSite(ctx)
		if err != nil {
			t.Error(err)
			u = func() {}
		}
		got <- u
	}()
	select {
	case u := <-got:
		u()
		t.Fatal("the second replica took the site lock while the first held it")
	case <-time.After(500 * time.Millisecond):
	}
	unlock()
	select {
	case u := <-got:
		u()
	case <-time.After(10 * time.Second):
		t.Fatal("the second replica did not get the site lock after the first released it")
	}
	// Many holders on both replicas: never two inside at once.
	var inside, most atomic.Int32
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			u, err := replicas[i%2].LockSite(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			n := inside.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			time.Sleep(5 * time.Millisecond)
			inside.Add(-1)
			u()
		})
	}
	wg.Wait()
	if m := most.Load(); m != 1 {
		t.Fatalf("%d holders inside the site lock at once, want 1", m)
	}
}
