package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
	"go.yaml.in/yaml/v3"
)

// TestMain lets the test binary act as the bulwark command inside testscript
// scripts, so the scripts run the real CLI code path without a separate build.
func TestMain(m *testing.M) {
	// Tests that need a real bulwark process (signals) run this binary
	// with BULWARK_TEST_MAIN=1: it is then bulwark's main.
	if os.Getenv("BULWARK_TEST_MAIN") == "1" {
		main()
		os.Exit(0)
	}
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
		Cmds:                map[string]func(*testscript.TestScript, bool, []string){"parses": cmdParses},
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

// cmdParses is the script command `parses json|yaml`: the last command's
// stdout is one non-empty document of that format (with ! it must not be).
func cmdParses(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: parses json|yaml")
	}
	out := ts.ReadFile("stdout")
	err := parseDocument(args[0], []byte(out))
	switch {
	case err != nil && !neg:
		ts.Fatalf("stdout is not %s: %v\n%s", args[0], err, out)
	case err == nil && neg:
		ts.Fatalf("stdout parses as %s", args[0])
	}
}

// parseDocument checks that b holds exactly one non-empty document of format.
func parseDocument(format string, b []byte) error {
	var v any
	switch format {
	case "json":
		dec := json.NewDecoder(bytes.NewReader(b))
		if err := dec.Decode(&v); err != nil {
			return err
		}
		if _, err := dec.Token(); err != io.EOF {
			return fmt.Errorf("more than one JSON document")
		}
	case "yaml":
		dec := yaml.NewDecoder(bytes.NewReader(b))
		if err := dec.Decode(&v); err != nil {
			return err
		}
		if err := dec.Decode(new(any)); err != io.EOF {
			return fmt.Errorf("more than one YAML document")
		}
	default:
		return fmt.Errorf("unknown format %q", format)
	}
	if v == nil {
		return fmt.Errorf("empty document")
	}
	return nil
}
