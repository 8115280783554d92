package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/bulwarkhq/bulwark/internal/progress/ptytest"
)

// writeArchiveUpdates writes n update YAMLs with a small payload each and
// returns their paths.
func writeArchiveUpdates(t testing.TB, dir string, n int) []string {
	t.Helper()
	var paths []string
	for i := 1; i <= n; i++ {
		id := fmt.Sprintf("BW-2026-%04d", i)
		if err := os.WriteFile(filepath.Join(dir, id+".tar"), bytes.Repeat([]byte{byte(i)}, 4096), 0o644); err != nil {
			t.Fatal(err)
		}
		y := fmt.Sprintf("id: %s\ntitle: update %d\nproduct: debian-12\nclassification: security\nseverity: important\nreleased: 2026-11-20\nreboot: never\ninstaller: {type: archive, prefix: /opt/bw-test}\npayloads: [{file: %s.tar}]\n", id, i, id)
		p := filepath.Join(dir, id+".yaml")
		if err := os.WriteFile(p, []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	return paths
}

// A large publish on a terminal (a pty at 80 and at 40 columns) shows
// "n of N" on one line redrawn in place that never wraps; with stderr not a
// terminal it shows nothing.
func TestPublishProgressOnTerminal(t *testing.T) {
	ctx := context.Background()
	for _, cols := range []uint16{80, 40, 0} {
		dir := t.TempDir()
		repo := filepath.Join(dir, "vendor")
		if err := run(ctx, []string{"repo", "init", repo, "--bin-bits", "4"}, nil, io.Discard, io.Discard); err != nil {
			t.Fatal(err)
		}
		updates := writeArchiveUpdates(t, dir, 40)
		var stdout, stderr bytes.Buffer
		if cols == 0 {
			if err := run(ctx, append([]string{"repo", "publish", repo}, updates...), nil, &stdout, &stderr); err != nil {
				t.Fatal(err)
			}
			if stderr.Len() != 0 {
				t.Errorf("stderr not a terminal: got %q", stderr.String())
			}
			continue
		}
		term := ptytest.Open(t, cols)
		err := run(ctx, append([]string{"repo", "publish", repo}, updates...), nil, &stdout, term.TTY)
		out := term.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(stdout.String(), "BW-2026-0040: published revision 1") {
			t.Fatalf("stdout: %s", stdout.String())
		}
		redraws := ptytest.Redraws(out)
		if len(redraws) < 2 {
			t.Fatalf("%d columns: redraws %q", cols, out)
		}
		seen := false
		for _, l := range redraws {
			if c := utf8.RuneCountInString(l); c >= int(cols) {
				t.Errorf("%d columns: a redraw of %d columns wraps: %q", cols, c, l)
			}
			seen = seen || strings.Contains(l, " of 40")
		}
		if !seen {
			t.Errorf("%d columns: no \"n of 40\" in %q", cols, out)
		}
	}
}
