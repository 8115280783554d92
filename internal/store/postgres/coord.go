package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// siteLockKey is the advisory lock every replica takes to sign the site
// repository ("BWSITE" in ASCII).
const siteLockKey int64 = 0x425753495445

// siteChannel is the LISTEN/NOTIFY channel on which replicas announce a
// change of the site repository.
const siteChannel = "bulwark_site"

// LockSite takes the cluster-wide lock for signing the site repository: at
// most one replica holds it at a time. unlock releases it.
func (d *DB) LockSite(ctx context.Context) (unlock func(), err error) {
	conn, err := d.SQL().Conn(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, siteLockKey); err != nil {
		conn.Close()
		return nil, fmt.Errorf("site lock: %w", err)
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_unlock($1)`, siteLockKey); err != nil {
			// Closing the connection ends the session, which releases the
			// lock too; drop it from the pool rather than reuse it.
			conn.Raw(func(any) error { return err })
		}
		conn.Close()
	}, nil
}

// NotifySite tells every replica that the site repository changed.
func (d *DB) NotifySite(ctx context.Context) error {
	_, err := d.SQL().ExecContext(ctx, `SELECT pg_notify($1, '')`, siteChannel)
	return err
}

// ListenSite calls fn whenever a replica announces a change of the site
// repository, until ctx ends. After a lost connection it reconnects and
// calls fn once, as soon as it listens again: a change announced while no
// connection listened is not lost.
func (d *DB) ListenSite(ctx context.Context, fn func()) error {
	for missed := false; ; missed = true {
		err := d.listen(ctx, fn, missed)
		if ctx.Err() != nil {
			return nil
		}
		d.log(err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

// listen listens on one connection until it fails; missed calls fn once
// LISTEN is in effect.
func (d *DB) listen(ctx context.Context, fn func(), missed bool) error {
	conn, err := pgx.ConnectConfig(ctx, d.cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+siteChannel); err != nil {
		return err
	}
	if missed {
		fn()
	}
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		fn()
	}
}
