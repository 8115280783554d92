package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// serverOnly are packages the lean agent build (-tags agentonly) must not
// link: the server and its store, SQLite, PostgreSQL, migrations, metrics,
// the console's browser tests, offline media and the man-page generator.
var serverOnly = []string{
	"github.com/bulwarkhq/bulwark/internal/server",
	"github.com/bulwarkhq/bulwark/internal/store",
	"github.com/bulwarkhq/bulwark/internal/media",
	"modernc.org/sqlite",
	"github.com/jackc/pgx/v5",
	"github.com/pressly/goose/v3",
	"github.com/prometheus/client_golang",
	"github.com/chromedp/chromedp",
	"github.com/spf13/cobra/doc",
}

// leanDeps lists what the package in this directory imports with tags.
func leanDeps(t *testing.T, tags string) []string {
	t.Helper()
	b, err := exec.Command("go", "list", "-deps", "-tags", tags, ".").Output()
	if err != nil {
		t.Fatalf("go list -deps -tags %q: %v", tags, err)
	}
	return strings.Fields(string(b))
}

// linked reports the dependencies under any of the prefixes.
func linked(deps, prefixes []string) []string {
	var found []string
	for _, d := range deps {
		for _, p := range prefixes {
			if d == p || strings.HasPrefix(d, p+"/") {
				found = append(found, d)
			}
		}
	}
	return found
}

// TestLeanAgentLeavesOutTheServer checks the lean agent build's imports
// (go list -deps) against the server's packages, with the full build as
// the control that the list would catch them; then builds the lean binary
// and runs it: the agent's commands are there, the server's are not.
func TestLeanAgentLeavesOutTheServer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	if got := linked(leanDeps(t, "agentonly"), serverOnly); len(got) > 0 {
		t.Errorf("the lean agent build imports server packages:\n%s", strings.Join(got, "\n"))
	}
	if got := linked(leanDeps(t, ""), serverOnly); len(got) < 6 {
		t.Errorf("control: the full build lists only %v of the server packages; the check would not see them", got)
	}

	bin := filepath.Join(t.TempDir(), "bulwark-agent")
	build := exec.Command("go", "build", "-tags", "agentonly", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build -tags agentonly: %v\n%s", err, out)
	}
	help, err := exec.Command(bin, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("bulwark-agent --help: %v\n%s", err, help)
	}
	for _, want := range []string{"bulwark-agent", "run", "enroll", "status", "updates", "install"} {
		if !strings.Contains(string(help), want) {
			t.Errorf("bulwark-agent --help lacks %q:\n%s", want, help)
		}
	}
	out, err := exec.Command(bin, "server").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Errorf("bulwark-agent server: %v, want a usage error (exit 2):\n%s", err, out)
	}
}
