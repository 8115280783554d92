package e2e

import (
	"context"
	"fmt"
	"testing"

	"github.com/bulwarkhq/bulwark/internal/agent"
	"github.com/bulwarkhq/bulwark/internal/server"
	"github.com/bulwarkhq/bulwark/internal/wire"
)

// TestAgentWaitsOutTokenRate: machines behind one address enrolling with
// one token faster than the token's rate are answered 429 with Retry-After;
// the agent waits and enrolls, instead of failing.
func TestAgentWaitsOutTokenRate(t *testing.T) {
	srv, first := serve(t, server.Config{EnrollLimits: server.EnrollLimits{TokenBurst: 2, TokenRate: 1}})
	siteRoot, err := srv.SiteRootFingerprint()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		mid := fmt.Sprintf("%032x", i+1)
		_, err := agent.Enroll(context.Background(), agent.EnrollOptions{Server: srv.URL(), Token: first.EnrollToken, CAFingerprint: srv.CAFingerprint(),
			SiteRootFingerprint: siteRoot, StateDir: t.TempDir(), Facts: wire.Facts{MachineID: mid, Hostname: "nat-" + mid[28:], OS: "debian 12", Arch: "amd64"}})
		if err != nil {
			t.Fatalf("machine %d behind the one address: %v", i+1, err)
		}
	}
}
