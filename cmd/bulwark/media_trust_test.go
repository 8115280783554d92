//go:build !agentonly

package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/agent"
	"github.com/bulwarkhq/bulwark/internal/wire"
)

// TestAttackMediaTrustsServerHandedVendor: a server compromised when the
// machine enrolled handed it a vendor root of its own ("evil"). The agent's
// cycle refuses that vendor (not pinned, not in the site's signed list);
// media installed with the agent's --state-dir must refuse it too, and keep only
// the pins the admin gave at enrollment.
func TestAttackMediaTrustsServerHandedVendor(t *testing.T) {
	state := t.TempDir()
	e := agent.Enrollment{
		EnrollResponse: wire.EnrollResponse{
			AgentID: "a1",
			Vendors: []wire.RepoRef{
				{Name: "evil", Root: []byte(`{"signed":{"_type":"root"},"signatures":[]}`)},
				{Name: "debian", Root: []byte(`{"signed":{"_type":"root","version":1},"signatures":[]}`)},
			},
		},
		VendorPins: map[string]string{"debian": "sha256:ab000000000000000000000000000000000000000000000000000000000000cd"},
	}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(state, "enrollment.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	tf := trustFlags{state: state}
	tr, err := tf.trust()
	if err != nil {
		t.Fatal(err)
	}
	if fp, ok := tr.Vendors["evil"]; ok {
		t.Fatalf("media trust pins the server-handed vendor evil (%s): the attack worked", fp)
	}
	if got, want := tr.Vendors["debian"], e.VendorPins["debian"]; got != want {
		t.Fatalf("debian pin = %q, want the enrollment's --vendor pin %q", got, want)
	}
	if len(tr.Vendors) != 1 {
		t.Fatalf("pins = %v, want only debian", tr.Vendors)
	}
}
