package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/catalog"
	"github.com/bulwarkhq/bulwark/internal/fetch"
	"github.com/bulwarkhq/bulwark/internal/tuf"
)

// downloadKillChild runs one cycle in a child process and SIGKILLs itself
// in the middle of the payload download.
func downloadKillChild() {
	dir := os.Getenv("BULWARK_AGENT_DLKILL")
	if dir == "" {
		return
	}
	now, _ := time.Parse(time.RFC3339, os.Getenv("BULWARK_AGENT_NOW"))
	clock := func() time.Time { return now }
	mk := func(name string) *tuf.Client {
		root, _ := os.ReadFile(filepath.Join(os.Getenv("BULWARK_AGENT_"+strings.ToUpper(name)+"_DIR"), "metadata", "1.root.json"))
		u := os.Getenv("BULWARK_AGENT_" + strings.ToUpper(name) + "_URL")
		c, err := tuf.NewClient(tuf.ClientConfig{TrustedRoot: root, MetadataURL: u + "/metadata", TargetsURL: u + "/targets", CacheDir: filepath.Join(dir, "cache", name), Now: clock})
		if err != nil {
			panic(err)
		}
		return c
	}
	a, err := Open(Config{StateDir: filepath.Join(dir, "state"), Now: clock, Policy: Policy{Mode: ModeAuto, AutoInstallSeverity: catalog.SeverityLow},
		Handlers: func(string) (Handler, error) { return &reader{got: map[string]string{}}, nil }})
	if err != nil {
		panic(err)
	}
	opts := CycleOptions{AgentID: "agent-1", Facts: debian12, Download: fetch.FileOptions{Progress: func(done, total int64) {
		if done > 0 && done < total {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			time.Sleep(time.Minute)
		}
	}}}
	a.Cycle(context.Background(), Sources{Site: mk("site"), Vendors: map[string]*tuf.Client{"debian": mk("vendor")}, Group: "web"}, opts)
	os.Exit(0)
}

// Killing the agent in the middle of a download loses nothing: the next
// cycle resumes the payload with an HTTP Range request and installs it.
func TestDownloadResumesAfterAgentKilled(t *testing.T) {
	w := newWorld(t)
	big := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB
	w.publish("BW-1", "", map[string]string{"big.deb": big})
	w.approve("web", "BW-1")
	u := targetURL(t, w.vendorDir, "updates/BW-1/big.deb")
	var ranges atomic.Int32
	w.vs.handle(u, slowThenRange([]byte(big), &ranges))

	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "BULWARK_AGENT_DLKILL="+dir, "BULWARK_AGENT_NOW="+w.now.Format(time.RFC3339),
		"BULWARK_AGENT_SITE_DIR="+w.siteDir, "BULWARK_AGENT_SITE_URL="+w.ss.URL,
		"BULWARK_AGENT_VENDOR_DIR="+w.vendorDir, "BULWARK_AGENT_VENDOR_URL="+w.vs.URL)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("agent not killed mid-download: %v %s", err, out)
	}
	partials, _ := filepath.Glob(filepath.Join(dir, "state", "downloads", "debian", "BW-1", "*"+fetch.PartialSuffix))
	if len(partials) != 1 {
		t.Fatalf("no partial download left by the killed agent: %v", partials)
	}

	h := &reader{got: map[string]string{}}
	a, err := Open(Config{StateDir: filepath.Join(dir, "state"), Now: w.clock, Policy: Policy{Mode: ModeAuto, AutoInstallSeverity: catalog.SeverityLow},
		Handlers: func(string) (Handler, error) { return h, nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	src := Sources{Site: w.sources(filepath.Join(dir, "cache")).Site, Vendors: w.sources(filepath.Join(dir, "cache")).Vendors, Group: "web"}
	if _, err := a.Cycle(context.Background(), src, CycleOptions{AgentID: "agent-1", Facts: debian12}); err != nil {
		t.Fatal(err)
	}
	if h.got["BW-1/big.deb"] != big {
		t.Fatalf("installed %d bytes, want the genuine %d", len(h.got["BW-1/big.deb"]), len(big))
	}
	if ranges.Load() == 0 {
		t.Fatal("the restarted agent downloaded from the start instead of resuming with Range")
	}
}

// slowThenRange serves body in two halves with a pause in between (so a
// progress callback sees a partial file), and counts Range requests.
func slowThenRange(body []byte, ranges *atomic.Int32) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Range") != "" {
			ranges.Add(1)
			http.ServeContent(w, r, "p", time.Time{}, bytes.NewReader(body))
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.Write(body[:len(body)/2])
		w.(http.Flusher).Flush()
		time.Sleep(300 * time.Millisecond)
		w.Write(body[len(body)/2:])
	}
}
