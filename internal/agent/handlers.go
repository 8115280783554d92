package agent

import (
	"path/filepath"

	"github.com/bulwarkhq/bulwark/internal/install"
)

// InstallHandlers are the real handlers (internal/install: dpkg for deb,
// the guarded extractor for archive, hardening profiles for lockdown) for a
// root, keeping what uninstall
// needs under the agent's state directory.
func InstallHandlers(root, stateDir string, opts install.Options) Handlers {
	// Handlers want absolute paths; a relative --state-dir or root is taken
	// from where the agent was started.
	if abs, err := filepath.Abs(root); err == nil {
		root = abs
	}
	if abs, err := filepath.Abs(stateDir); err == nil {
		stateDir = abs
	}
	return func(t string) (Handler, error) {
		h, err := install.ForType(t, opts)
		if err != nil {
			return nil, err
		}
		return install.Bind(h, root, filepath.Join(stateDir, "installed")), nil
	}
}
