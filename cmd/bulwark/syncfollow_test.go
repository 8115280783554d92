//go:build !agentonly

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/bulwarkhq/bulwark/internal/progress/ptytest"
	"github.com/bulwarkhq/bulwark/internal/server"
	"github.com/bulwarkhq/bulwark/internal/server/servertest"
	"github.com/bulwarkhq/bulwark/internal/slowlink"
	"github.com/bulwarkhq/bulwark/internal/store"
	"github.com/bulwarkhq/bulwark/internal/tuf"
)

// startTestServer runs a real update server on loopback until the test
// ends.
func startTestServer(t testing.TB, cfg server.Config) (*server.Server, *server.FirstStart) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	cfg.PublicURL = "https://" + ln.Addr().String()
	cfg.Logger = slog.New(slog.DiscardHandler)
	srv, first, err := server.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready, stopped := make(chan struct{}), make(chan struct{})
	go func() { srv.Serve(ctx, ln, nil, func() { close(ready) }); close(stopped) }()
	<-ready
	t.Cleanup(func() { cancel(); <-stopped })
	servertest.WaitStartSync(t, srv)
	return srv, first
}

// `admin sync run --follow` on a terminal draws the sync while it runs: a
// mirror fetches 8 new updates of 1 MiB through a 4 MiB/s link, and the
// line shows "n of 8" updates, the bytes growing towards 8 MiB, the rate
// and the time left, never wider than the terminal, then the result; with
// stderr not a terminal nothing is drawn, and -o json prints only the
// result.
func TestSyncFollowOnTerminal(t *testing.T) {
	ctx := context.Background()
	work := t.TempDir()
	vdir := filepath.Join(work, "vendor")
	vr, err := tuf.Init(vdir, tuf.InitOptions{Name: "example", BinBits: 4}, tuf.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer vr.Close()
	publish := func(id string, size int) {
		t.Helper()
		p := filepath.Join(work, id+".tar")
		if err := os.WriteFile(p, bytes.Repeat([]byte(id[len(id)-1:]), size), 0o644); err != nil {
			t.Fatal(err)
		}
		y := fmt.Sprintf("id: %s\ntitle: %s\nproduct: debian-12\nclassification: security\nseverity: low\nreleased: 2026-11-20\nreboot: never\ninstaller: {type: archive, prefix: /opt/bw-test}\npayloads: [{file: %s.tar}]\n", id, id, id)
		if err := os.WriteFile(filepath.Join(work, id+".yaml"), []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := vr.Publish(ctx, filepath.Join(work, id+".yaml"), tuf.PublishOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	publish("BW-0", 100)
	root, err := os.ReadFile(filepath.Join(vdir, "metadata", "1.root.json"))
	if err != nil {
		t.Fatal(err)
	}
	up, _ := startTestServer(t, server.Config{Vendors: []server.HostedVendor{{Name: "example", Dir: vdir}}})
	relay := slowlink.Start(t, strings.TrimPrefix(up.URL(), "https://"), 4<<20)
	site, first := startTestServer(t, server.Config{Upstream: &server.Upstream{URL: "https://" + relay, CAFingerprint: up.CAFingerprint(), Interval: time.Hour,
		Vendors: []server.UpstreamVendor{{Name: "example", RootFingerprint: tuf.RootFingerprint(root)}}}})
	tokenFile := filepath.Join(work, "admin.token")
	if err := os.WriteFile(tokenFile, []byte(first.AdminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	admin := []string{"admin", "--server", site.URL(), "--ca-fingerprint", site.CAFingerprint(), "--token-file", tokenFile, "--wait", "60s"}
	// The sync at start has the first update; each case then follows a
	// sync of 8 new ones.
	if _, err := site.SyncAll(ctx, "", "manual"); err != nil {
		t.Fatal(err)
	}
	n := 0
	more := func() {
		t.Helper()
		for range 8 {
			n++
			publish(fmt.Sprintf("BW-%d", n), 1<<20)
		}
		if _, err := up.SyncAll(ctx, "", "manual"); err != nil { // the upstream notices at once
			t.Fatal(err)
		}
	}
	amount := regexp.MustCompile(`([0-9.]+ [KMG]?i?B)/8\.0 MiB`)

	for _, cols := range []uint16{100, 40} {
		more()
		term := ptytest.Open(t, cols)
		var stdout bytes.Buffer
		err := run(ctx, append(admin, "sync", "run", "--follow"), nil, &stdout, term.TTY)
		out := term.Close()
		if err != nil {
			t.Fatalf("%d columns: %v\n%s", cols, err, out)
		}
		if !strings.Contains(stdout.String(), "example") || !strings.Contains(stdout.String(), "ok") {
			t.Fatalf("%d columns: the result on stdout: %q", cols, stdout.String())
		}
		redraws := ptytest.Redraws(out)
		amounts := map[string]bool{}
		var of8, rate, eta, ok bool
		for _, l := range redraws {
			if c := utf8.RuneCountInString(l); c >= int(cols) {
				t.Errorf("%d columns: a redraw of %d columns wraps: %q", cols, c, l)
			}
			if m := amount.FindStringSubmatch(l); m != nil && m[1] != "8.0 MiB" {
				amounts[m[1]] = true
			}
			of8 = of8 || strings.Contains(l, " of 8")
			rate = rate || strings.Contains(l, "MiB/s") || strings.Contains(l, "KiB/s")
			eta = eta || strings.Contains(l, "ETA ")
			ok = ok || strings.Contains(l, "sync example: ok")
		}
		if cols == 40 {
			if !of8 && len(redraws) < 2 {
				t.Errorf("40 columns: redraws %q", redraws)
			}
			continue
		}
		if len(amounts) < 2 || !of8 || !rate || !eta || !ok {
			t.Errorf("%d columns: want the bytes growing (saw %v), \"n of 8\" (%v), a rate (%v), an ETA (%v) and the result (%v) in %q",
				cols, amounts, of8, rate, eta, ok, redraws)
		}
	}

	// Not a terminal: nothing drawn; -o json: the runs alone.
	more()
	var stdout, stderr bytes.Buffer
	if err := run(ctx, append(admin, "sync", "run", "--follow", "-o", "json"), nil, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr not a terminal: got %q", stderr.String())
	}
	var res struct{ Runs []store.SyncRun }
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil || len(res.Runs) != 1 || res.Runs[0].Status != store.SyncOK || res.Runs[0].BytesFetched < 8<<20 {
		t.Fatalf("-o json: %v %s", err, stdout.String())
	}
}
