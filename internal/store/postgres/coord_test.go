package postgres_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/store/postgres"
	"github.com/bulwarkhq/bulwark/internal/store/postgres/pgtest"
)

// TestListenSiteAfterLostConnection: when the connection that listens for
// site changes is lost, the replica drops its caches once it listens
// again, not before: a change announced between the drop and a LISTEN not
// yet in effect would otherwise leave a stale check-in answer cached until
// the next change. Notifications after the reconnect arrive as before.
func TestListenSiteAfterLostConnection(t *testing.T) {
	pg := pgtest.Start(t, pgtest.Options{})
	url := pg.NewDatabase(t)
	db, err := postgres.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	// listeners counts the backends listening on the site channel other
	// than old (PostgreSQL shows a session's last statement).
	listeners := func(old int) int {
		var n int
		err := db.SQL().QueryRowContext(context.Background(),
			`SELECT count(*) FROM pg_stat_activity WHERE query = 'LISTEN bulwark_site' AND pid <> $1`, old).Scan(&n)
		if err != nil {
			t.Error(err)
		}
		return n
	}
	calls := make(chan int, 16) // the listeners in place (besides the first) when fn ran
	var first int
	var firstSeen atomic.Int64
	go func() {
		defer close(done)
		db.ListenSite(ctx, func() { calls <- listeners(int(firstSeen.Load())) })
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := db.SQL().QueryRowContext(ctx, `SELECT pid FROM pg_stat_activity WHERE query = 'LISTEN bulwark_site'`).Scan(&first)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no connection listens on the site channel after 10 s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	firstSeen.Store(int64(first))
	var ok bool
	if err := db.SQL().QueryRowContext(ctx, `SELECT pg_terminate_backend($1)`, first).Scan(&ok); err != nil || !ok {
		t.Fatalf("terminate the listening connection %d: %v %v", first, ok, err)
	}
	select {
	case n := <-calls:
		if n != 1 {
			t.Fatalf("after the lost connection the caches were dropped while %d connections listened, want 1 (the new one)", n)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("caches not dropped within 20 s of the lost connection")
	}
	if err := db.NotifySite(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-calls:
	case <-time.After(20 * time.Second):
		t.Fatal("a change announced after the reconnect did not arrive within 20 s")
	}
}
