package install

import (
	"context"

	"github.com/bulwarkhq/bulwark/internal/catalog"
)

// Bound is a Handler bound to one root and state directory, with the
// method set the agent's install pass calls (internal/agent.Handler).
type Bound struct {
	H        Handler
	Root     string
	StateDir string
}

// Bind returns h bound to root and stateDir.
func Bind(h Handler, root, stateDir string) *Bound {
	return &Bound{H: h, Root: root, StateDir: stateDir}
}

// Install installs u from its verified payload files and says whether a
// reboot is needed to finish.
func (b *Bound) Install(ctx context.Context, u *catalog.Update, payloads map[string]string) (bool, error) {
	res, err := b.H.Install(ctx, Request{Update: u, Payloads: payloads, Root: b.Root, StateDir: b.StateDir})
	return res.RebootRequired, err
}

// Uninstall removes u and says whether a reboot is needed to finish.
func (b *Bound) Uninstall(ctx context.Context, u *catalog.Update, payloads map[string]string) (bool, error) {
	res, err := b.H.Uninstall(ctx, Request{Update: u, Payloads: payloads, Root: b.Root, StateDir: b.StateDir})
	return res.RebootRequired, err
}

// Batcher is a Handler that installs several updates in one transaction
// (the deb handler: one apt-get install of all their payloads).
type Batcher interface {
	InstallBatch(ctx context.Context, reqs []Request) ([]Result, []error)
}

// InstallBatch installs us in one transaction when the handler can (see
// Deb.InstallBatch), one by one otherwise, and says for each whether a
// reboot is needed to finish.
func (b *Bound) InstallBatch(ctx context.Context, us []*catalog.Update, payloads []map[string]string) ([]bool, []error) {
	reqs := make([]Request, len(us))
	for i, u := range us {
		reqs[i] = Request{Update: u, Payloads: payloads[i], Root: b.Root, StateDir: b.StateDir}
	}
	reboot, errs := make([]bool, len(us)), make([]error, len(us))
	if bh, ok := b.H.(Batcher); ok {
		res, es := bh.InstallBatch(ctx, reqs)
		for i := range res {
			reboot[i], errs[i] = res[i].RebootRequired, es[i]
		}
		return reboot, errs
	}
	for i, r := range reqs {
		res, err := b.H.Install(ctx, r)
		reboot[i], errs[i] = res.RebootRequired, err
	}
	return reboot, errs
}
