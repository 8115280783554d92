package sqlstore

import (
	"context"
	"time"

	"github.com/bulwarkhq/bulwark/internal/store"
)

// pruneChunk bounds the rows one pruning transaction deletes, so a large
// backlog never holds SQLite's write lock (or a PostgreSQL row lock set)
// for long.
const pruneChunk = 5000

// pruneRule deletes, chunk by chunk, the rows of one table a policy no
// longer keeps: del must delete at most $2 rows older than $1.
type pruneRule struct {
	table string
	keep  func(store.Retention) time.Duration
	del   string
}

var pruneRules = []pruneRule{
	{"reports", func(r store.Retention) time.Duration { return r.Reports },
		`DELETE FROM reports WHERE (agent_id, batch_id) IN
			(SELECT agent_id, batch_id FROM reports WHERE received_at < $1 LIMIT $2)`},
	{"sync_runs", func(r store.Retention) time.Duration { return r.Syncs },
		`DELETE FROM sync_runs WHERE id IN
			(SELECT id FROM sync_runs WHERE started_at < $1 AND finished_at IS NOT NULL LIMIT $2)`},
}

// pruneEvents deletes, at most $2 at a time, each computer's state events
// beyond its newest $1.
const pruneEvents = `DELETE FROM state_events WHERE id IN
	(SELECT id FROM (SELECT id, ROW_NUMBER() OVER (PARTITION BY agent_id ORDER BY id DESC) AS rn FROM state_events) ranked
	 WHERE rn > $1 LIMIT $2)`

// Prune deletes the history r no longer keeps at now.
func (d *DB) Prune(ctx context.Context, r store.Retention, now time.Time) (store.Pruned, error) {
	out := store.Pruned{}
	for _, rule := range pruneRules {
		if age := rule.keep(r); age > 0 {
			if err := d.pruneChunks(ctx, out, rule.table, rule.del, ms(now.Add(-age))); err != nil {
				return out, err
			}
		}
	}
	if r.Events > 0 {
		if err := d.pruneChunks(ctx, out, "state_events", pruneEvents, r.Events); err != nil {
			return out, err
		}
	}
	return out, nil
}

// pruneChunks runs del (arguments arg and the chunk size) until it deletes
// less than a chunk, counting into out[table].
func (d *DB) pruneChunks(ctx context.Context, out store.Pruned, table, del string, arg any) error {
	for {
		res, err := d.db.ExecContext(ctx, del, arg, pruneChunk)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		out[table] += n
		if n < pruneChunk {
			return nil
		}
	}
}
