package agent

import (
	"context"
	"path/filepath"

	"github.com/bulwarkhq/bulwark/internal/catalog"
	"github.com/bulwarkhq/bulwark/internal/install"
)

// InstallHandlers are the real handlers (internal/install: dpkg for deb,
// the guarded extractor for archive) for a root, keeping what uninstall
// needs under the agent's state directory.
func InstallHandlers(root, stateDir string, opts install.Options) Handlers {
	return func(t string) (Handler, error) {
		h, err := install.ForType(t, opts)
		if err != nil {
			return nil, err
		}
		return installAdapter{h: h, root: root, stateDir: filepath.Join(stateDir, "installed")}, nil
	}
}

type installAdapter struct {
	h              install.Handler
	root, stateDir string
}

func (a installAdapter) Install(ctx context.Context, u *catalog.Update, payloads map[string]string) (bool, error) {
	res, err := a.h.Install(ctx, install.Request{Update: u, Payloads: payloads, Root: a.root, StateDir: a.stateDir})
	return res.RebootRequired, err
}

func (a installAdapter) Uninstall(ctx context.Context, u *catalog.Update, payloads map[string]string) (bool, error) {
	res, err := a.h.Uninstall(ctx, install.Request{Update: u, Payloads: payloads, Root: a.root, StateDir: a.stateDir})
	return res.RebootRequired, err
}
