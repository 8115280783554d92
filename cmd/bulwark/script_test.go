package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain lets the test binary act as the bulwark command inside testscript
// scripts, so the scripts run the real CLI code path without a separate build.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"bulwark": func() {
			if err := run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
				os.Exit(report(os.Stderr, err))
			}
		},
	})
}

// TestScript runs every CLI scenario under testdata/script, the README's
// examples among them.
func TestScript(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			env.Setenv("HOME", env.WorkDir)
			// A network namespace name of this script's own (media_airgap
			// makes one); removed when the script ends, even on failure.
			ns := fmt.Sprintf("bwts-%d-%s", os.Getpid(), filepath.Base(env.WorkDir))
			env.Setenv("NETNS", ns)
			env.Defer(func() {
				if _, err := os.Stat(filepath.Join("/run/netns", ns)); err == nil {
					exec.Command("ip", "netns", "del", ns).Run()
				}
			})
			return nil
		},
	})
}
