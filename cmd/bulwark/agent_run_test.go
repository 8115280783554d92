package main

import (
	"strings"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/agent"
)

func TestFailedUpdates(t *testing.T) {
	if err := failedUpdates([]agent.UpdateRecord{{Key: "debian/BW-1", State: agent.StateInstalled}}); err != nil {
		t.Fatalf("no failure: %v", err)
	}
	err := failedUpdates([]agent.UpdateRecord{{Key: "debian/BW-1", State: agent.StateInstalled}, {Key: "debian/BW-2", State: agent.StateFailed, Reason: "apt-get install: unmet dependency"}})
	if err == nil || !strings.Contains(err.Error(), "1 approved update(s) failed: debian/BW-2 (apt-get install: unmet dependency)") {
		t.Fatalf("err = %v", err)
	}
}
