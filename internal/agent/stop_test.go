package agent

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/catalog"
)

// stopDuring is a Handler that stops the agent (cancels the pass's context,
// as SIGTERM does) while it installs, then works on as dpkg would for a
// while, and records whether its own context was cancelled under it.
type stopDuring struct {
	stop      context.CancelFunc
	installed *[]string
	killed    *bool
}

func (h stopDuring) Install(ctx context.Context, u *catalog.Update, _ map[string]string) (bool, error) {
	h.stop()
	select {
	case <-ctx.Done():
		*h.killed = true
		return false, ctx.Err()
	case <-time.After(200 * time.Millisecond): // dpkg unpacking and configuring
	}
	*h.installed = append(*h.installed, u.ID)
	return false, nil
}

func (h stopDuring) Uninstall(ctx context.Context, u *catalog.Update, p map[string]string) (bool, error) {
	return h.Install(ctx, u, p)
}

// Stopping the agent during an install lets the package in hand finish and
// starts no other: dpkg is never killed half-way (the unit's
// TimeoutStopSec gives it 15 minutes).
func TestStopDuringInstallLetsThePackageFinish(t *testing.T) {
	f := newPassFixture(t)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var installed []string
	var killed bool
	h := stopDuring{stop: stop, installed: &installed, killed: &killed}
	a, err := Open(Config{StateDir: f.dir, Handlers: func(string) (Handler, error) { return h, nil },
		Reboot: Reboot{Command: []string{"true"}, BootIDPath: f.bootID}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	_, err = a.runPass(ctx, steps("BW-1", "BW-2"), nil)
	if err == nil {
		t.Fatal("a stopped pass reported success")
	}
	if killed {
		t.Fatal("the install in hand was cancelled by the stop")
	}
	if len(installed) != 1 || installed[0] != "BW-1" {
		t.Fatalf("installed %v; want BW-1 finished and BW-2 not started", installed)
	}
	states := map[string]State{}
	for _, r := range a.Updates() {
		states[r.Key[strings.LastIndex(r.Key, "/")+1:]] = r.State
	}
	if states["BW-1"] != StateInstalled {
		t.Errorf("BW-1: %q, want %s (states %v)", states["BW-1"], StateInstalled, states)
	}
}
