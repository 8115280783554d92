package server

import (
	"context"
	"sync"

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
	st     AgentStore
	queue  chan *ingestReq
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type ingestReq struct {
	ctx     context.Context
	r       *store.Report
	applied bool
	err     error
	done    chan struct{}
}

// NewIngester starts an ingester over st; Close stops it.
func NewIngester(st AgentStore) *Ingester {
	ctx, cancel := context.WithCancel(context.Background())
	in := &Ingester{st: st, queue: make(chan *ingestReq, maxGroup), cancel: cancel}
	in.wg.Go(func() { in.loop(ctx) })
	return in
}

// Apply stores one report once and says whether it was new.
func (in *Ingester) Apply(ctx context.Context, r *store.Report) (bool, error) {
	req := &ingestReq{ctx: ctx, r: r, done: make(chan struct{})}
	select {
	case in.queue <- req:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	select {
	case <-req.done:
		return req.applied, req.err
	case <-ctx.Done():
		// The report may still be applied; the agent sends it again and
		// the batch id makes that harmless.
		return false, ctx.Err()
	}
}

// Close stops the ingester after the reports already queued.
func (in *Ingester) Close() {
	in.cancel()
	in.wg.Wait()
}

func (in *Ingester) loop(ctx context.Context) {
	batcher, _ := in.st.(ReportBatcher)
	for {
		var group []*ingestReq
		select {
		case <-ctx.Done():
			in.drain()
			return
		case req := <-in.queue:
			group = append(group, req)
		}
	more:
		for len(group) < maxGroup {
			select {
			case req := <-in.queue:
				group = append(group, req)
			default:
				break more
			}
		}
		in.apply(context.WithoutCancel(ctx), batcher, group)
	}
}

func (in *Ingester) apply(ctx context.Context, batcher ReportBatcher, group []*ingestReq) {
	defer func() {
		for _, req := range group {
			close(req.done)
		}
	}()
	if batcher != nil && len(group) > 1 {
		rs := make([]*store.Report, len(group))
		for i, req := range group {
			rs[i] = req.r
		}
		if applied, err := batcher.ApplyReports(ctx, rs); err == nil {
			for i, req := range group {
				req.applied = applied[i]
			}
			return
		}
		// One bad batch (an agent removed meanwhile) must not fail the
		// others: apply them one by one.
	}
	for _, req := range group {
		req.applied, req.err = in.st.ApplyReport(ctx, req.r)
	}
}

func (in *Ingester) drain() {
	for {
		select {
		case req := <-in.queue:
			req.err = context.Canceled
			close(req.done)
		default:
			return
		}
	}
}
