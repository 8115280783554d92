package server

import (
	"context"

	"github.com/bulwarkhq/bulwark/internal/store"
)

// ReportBatcher is the optional store capability of applying several report
// batches in one transaction (group commit). Stores without it get one
// transaction per batch.
type ReportBatcher interface {
	ApplyReports(ctx context.Context, rs []*store.Report) ([]bool, error)
}

// maxGroup bounds how many report batches share one transaction.
const maxGroup = 256

// Ingester applies agent reports to a store. Reports that arrive while a
// transaction commits are applied together in the next one, so a busy
// server pays one commit for many reports and an idle one adds no delay.
type Ingester struct {
	st AgentStore
	gc *groupCommit[*store.Report]
}

// NewIngester starts an ingester over st; Close stops it.
func NewIngester(st AgentStore) *Ingester {
	in := &Ingester{st: st}
	in.gc = newGroupCommit(maxGroup, in.apply)
	return in
}

// Apply stores one report once and says whether it was new. When ctx ends
// first the report may still be applied; the agent sends it again and the
// batch id makes that harmless.
func (in *Ingester) Apply(ctx context.Context, r *store.Report) (bool, error) {
	return in.gc.do(ctx, r)
}

// Close stops the ingester after the reports already queued.
func (in *Ingester) Close() { in.gc.close() }

func (in *Ingester) apply(ctx context.Context, group []*groupItem[*store.Report]) {
	if batcher, _ := in.st.(ReportBatcher); batcher != nil && len(group) > 1 {
		rs := make([]*store.Report, len(group))
		for i, it := range group {
			rs[i] = it.v
		}
		if applied, err := batcher.ApplyReports(ctx, rs); err == nil {
			for i, it := range group {
				it.ok = applied[i]
			}
			return
		}
		// One bad batch (an agent removed meanwhile) must not fail the
		// others: apply them one by one.
	}
	for _, it := range group {
		it.ok, it.err = in.st.ApplyReport(ctx, it.v)
	}
}
