package server

import (
	"context"
	"sync"
)

// groupCommit does work items in groups, one store transaction each: items
// that arrive while a group is being written go together into the next, so
// a busy server pays one commit for many items and an idle one adds no
// delay. One goroutine writes: on SQLite, the single writer.
type groupCommit[T any] struct {
	queue  chan *groupItem[T]
	write  func(ctx context.Context, group []*groupItem[T])
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// groupItem is one item with its outcome, which write sets.
type groupItem[T any] struct {
	v    T
	ok   bool
	err  error
	done chan struct{}
}

// newGroupCommit starts a writer of groups of at most max items; close
// stops it.
func newGroupCommit[T any](max int, write func(ctx context.Context, group []*groupItem[T])) *groupCommit[T] {
	ctx, cancel := context.WithCancel(context.Background())
	g := &groupCommit[T]{queue: make(chan *groupItem[T], max), write: write, cancel: cancel}
	g.wg.Go(func() { g.loop(ctx, max) })
	return g
}

// do hands v to the writer and waits for its outcome. When ctx ends first
// the item may still be written: callers make that harmless (a report's
// batch id; an enrollment whose answer is lost enrolls again).
func (g *groupCommit[T]) do(ctx context.Context, v T) (bool, error) {
	it := &groupItem[T]{v: v, done: make(chan struct{})}
	select {
	case g.queue <- it:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	select {
	case <-it.done:
		return it.ok, it.err
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// close stops the writer after the items already queued.
func (g *groupCommit[T]) close() {
	g.cancel()
	g.wg.Wait()
}

func (g *groupCommit[T]) loop(ctx context.Context, max int) {
	for {
		var group []*groupItem[T]
		select {
		case <-ctx.Done():
			g.drain()
			return
		case it := <-g.queue:
			group = append(group, it)
		}
	more:
		for len(group) < max {
			select {
			case it := <-g.queue:
				group = append(group, it)
			default:
				break more
			}
		}
		g.write(context.WithoutCancel(ctx), group)
		for _, it := range group {
			close(it.done)
		}
	}
}

func (g *groupCommit[T]) drain() {
	for {
		select {
		case it := <-g.queue:
			it.err = context.Canceled
			close(it.done)
		default:
			return
		}
	}
}
