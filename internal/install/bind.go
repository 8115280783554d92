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
