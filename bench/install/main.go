// Command install measures installing real Debian security updates: the
// same .debs (BULWARK_TEST_DEBS, from scripts/setup.d/install.sh) into
// copies of one debootstrapped bookworm root (BULWARK_TEST_DEBIAN_ROOT),
// four ways in the same run:
//
//   - a Bulwark agent pass, foreground downloads: a real update server
//     (HTTPS on loopback) hosts the updates, a group approves them, an
//     enrolled agent checks in once (metadata, verified downloads, one
//     apt-get transaction, report);
//   - the same in auto mode (background downloads);
//   - apt-get install --download-only from a flat apt repository of the
//     same files served over HTTP on loopback, then dpkg -i of what apt
//     downloaded;
//   - apt-get install from that repository.
//
// apt-get update runs before apt's timings and is not counted; the agent's
// timing includes its metadata refresh. Root copies are not timed. It prints
// a Markdown table. Run it with bench/install/run.sh (as root: chroot).
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/bench/internal/benchsrv"
	"github.com/bulwarkhq/bulwark/internal/agent"
	"github.com/bulwarkhq/bulwark/internal/debpkg"
	"github.com/bulwarkhq/bulwark/internal/fetch"
	"github.com/bulwarkhq/bulwark/internal/tuf"
	"github.com/bulwarkhq/bulwark/internal/wire"
)

// updates groups the packages as Debian's advisories do.
var updates = []struct {
	id, reboot string
	pkgs       []string
}{
	{"DSA-PAM", "required", []string{"libpam0g", "libpam-modules-bin", "libpam-modules", "libpam-runtime"}},
	{"DSA-OPENSSL", "required", []string{"libssl3", "openssl"}},
	{"DSA-CA", "never", []string{"ca-certificates"}},
	{"DLA-TZDATA", "never", []string{"tzdata"}},
}

func main() {
	reps := flag.Int("reps", 3, "repetitions of each way")
	flag.Parse()
	if err := run(*reps); err != nil {
		log.Fatal(err)
	}
}

type bench struct {
	work, srcRoot string
	debs          []string // paths
	names         []string // package names
	bytes         int64
	srv           *benchsrv.Server
	api           func(method, path string, body any) ([]byte, error)
	aptURL        string
}

func run(reps int) error {
	ctx := context.Background()
	b := &bench{srcRoot: os.Getenv("BULWARK_TEST_DEBIAN_ROOT")}
	debDir := os.Getenv("BULWARK_TEST_DEBS")
	if b.srcRoot == "" || debDir == "" {
		return fmt.Errorf("BULWARK_TEST_DEBIAN_ROOT and BULWARK_TEST_DEBS must be set: source scripts/setup.d/apt-sources.sh, install.sh and lockdown.sh (bench/install/run.sh does)")
	}
	work, err := os.MkdirTemp("", "bulwark-bench-install-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	b.work = work

	// The vendor repository.
	vendorDir := filepath.Join(work, "vendor")
	vr, err := tuf.Init(vendorDir, tuf.InitOptions{Name: "debian"}, tuf.Options{})
	if err != nil {
		return err
	}
	pool := filepath.Join(work, "pool")
	os.MkdirAll(pool, 0o755)
	for _, u := range updates {
		dir := filepath.Join(work, "src", u.id)
		os.MkdirAll(dir, 0o755)
		var payloads []string
		for _, p := range u.pkgs {
			m, _ := filepath.Glob(filepath.Join(debDir, p+"_*.deb"))
			if len(m) != 1 {
				return fmt.Errorf("%s: want one %s_*.deb, found %v", debDir, p, m)
			}
			data, err := os.ReadFile(m[0])
			if err != nil {
				return err
			}
			os.WriteFile(filepath.Join(dir, filepath.Base(m[0])), data, 0o644)
			os.WriteFile(filepath.Join(pool, filepath.Base(m[0])), data, 0o644)
			info, err := debpkg.ReadFile(m[0])
			if err != nil {
				return err
			}
			b.debs, b.names, b.bytes = append(b.debs, m[0]), append(b.names, info.Name), b.bytes+int64(len(data))
			payloads = append(payloads, "{file: '"+filepath.Base(m[0])+"'}")
		}
		y := filepath.Join(dir, u.id+".yaml")
		os.WriteFile(y, []byte(fmt.Sprintf("id: %s\ntitle: %s\nproduct: debian-12\nclassification: security\nseverity: critical\nreleased: 2026-11-20\nreboot: %s\ninstaller: {type: deb}\npayloads: [%s]\n",
			u.id, strings.Join(u.pkgs, ", "), u.reboot, strings.Join(payloads, ", "))), 0o644)
		if _, err := vr.Publish(ctx, y, tuf.PublishOptions{}); err != nil {
			return err
		}
	}
	vr.Close()

	// The update server, and the approvals.
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	srv, err := benchsrv.Start(sctx, work, vendorDir)
	if err != nil {
		return err
	}
	b.srv, b.api = srv, srv.API
	if _, err := b.api("POST", "/api/v1/groups", map[string]string{"name": "web"}); err != nil {
		return err
	}
	for _, u := range updates {
		if _, err := b.api("PUT", "/api/v1/groups/web/approvals/debian/"+u.id, map[string]any{"action": "install"}); err != nil {
			return err
		}
	}

	// A flat apt repository of the same files, over HTTP on loopback.
	scan := exec.Command("dpkg-scanpackages", "--multiversion", ".")
	scan.Dir = pool
	idx, err := scan.Output()
	if err != nil {
		return fmt.Errorf("dpkg-scanpackages: %v", err)
	}
	os.WriteFile(filepath.Join(pool, "Packages"), idx, 0o644)
	aln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go http.Serve(aln, http.FileServer(http.Dir(pool)))
	b.aptURL = "http://" + aln.Addr().String() + "/"

	ways := []struct {
		name    string
		f       func(root string) error
		mayFail bool // the peer's known failure is a result, not an error
	}{
		{"Bulwark agent pass, foreground downloads", func(root string) error { return b.agentPass(ctx, root, fetch.Foreground) }, false},
		{"Bulwark agent pass, auto mode (background downloads)", func(root string) error { return b.agentPass(ctx, root, fetch.Background) }, false},
		{"`apt-get install --download-only` + `dpkg -i`", b.aptDownloadDpkg, true},
		{"`apt-get install`", b.aptInstall, false},
	}
	failures := make([]string, len(ways))
	times := make([][]time.Duration, len(ways))
	for r := 0; r < reps; r++ {
		for i, w := range ways {
			root := filepath.Join(work, fmt.Sprintf("root-%d-%d", r, i))
			if out, err := exec.Command("cp", "-a", b.srcRoot, root).CombinedOutput(); err != nil {
				return fmt.Errorf("copy root: %v %s", err, out)
			}
			if i >= 2 {
				if err := b.aptPrepare(root); err != nil {
					return err
				}
			}
			start := time.Now()
			err := w.f(root)
			el := time.Since(start)
			if err == nil {
				err = b.check(root)
			}
			if err != nil && !w.mayFail {
				return fmt.Errorf("%s: %w", w.name, err)
			}
			if err != nil {
				failures[i] = err.Error()
			}
			times[i] = append(times[i], el)
			fmt.Fprintf(os.Stderr, "%s: %v\n", w.name, el.Round(time.Millisecond))
			os.RemoveAll(root)
		}
	}
	apt := median(times[3])
	fmt.Printf("%d real packages in %d updates, %.1f MB of .debs.\n\n", len(b.debs), len(updates), float64(b.bytes)/1e6)
	fmt.Println("| way | median | all runs (s) | ratio to `apt-get install` | root afterwards |")
	fmt.Println("|---|---|---|---|---|")
	for i, w := range ways {
		var all []string
		for _, d := range times[i] {
			all = append(all, fmt.Sprintf("%.2f", d.Seconds()))
		}
		ratio := fmt.Sprintf("%.2f×", median(times[i]).Seconds()/apt.Seconds())
		if i == 1 {
			ratio = "**" + ratio + "**"
		}
		result := "every package upgraded, `dpkg --audit` clean"
		if failures[i] != "" {
			result = "**failed** (last run): " + strings.ReplaceAll(failures[i], "|", "/")
		}
		fmt.Printf("| %s | %.2f s | %s | %s | %s |\n", w.name, median(times[i]).Seconds(), strings.Join(all, " "), ratio, result)
	}
	return nil
}

// agentPass enrolls a fresh agent for root and times one check-in.
func (b *bench) agentPass(ctx context.Context, root string, mode fetch.Mode) error {
	out, err := b.api("POST", "/api/v1/tokens", map[string]any{"kind": "enroll", "group": "web", "max_uses": 1})
	if err != nil {
		return err
	}
	var tok struct{ Token string }
	json.Unmarshal(out, &tok)
	state := root + "-state"
	siteRoot, err := b.srv.SiteRootFingerprint()
	if err != nil {
		return err
	}
	if _, err := agent.Enroll(ctx, agent.EnrollOptions{Server: b.srv.URL(), Token: tok.Token, CAFingerprint: b.srv.CAFingerprint(), SiteRootFingerprint: siteRoot, StateDir: state,
		// Each pass is a fresh copy of the root: another machine, with its
		// own machine id (one id enrolled twice waits for an admin).
		Facts: wire.Facts{MachineID: fmt.Sprintf("%x", sha256.Sum256([]byte(root)))[:32], Hostname: "bench", OS: "debian 12", Arch: "amd64"}}); err != nil {
		return err
	}
	settings, err := agent.FileConfig{Server: b.srv.URL(), CAFingerprint: b.srv.CAFingerprint(), StateDir: state, Root: root, Mode: "auto",
		AutoInstallSeverity: "low", RebootCommand: []string{"true"}, BootIDPath: filepath.Join(state, "boot_id")}.Check()
	if err != nil {
		return err
	}
	logger := slog.New(slog.DiscardHandler)
	if os.Getenv("BENCH_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	d, _, closeAgent, err := agent.Build(settings, "amd64", "bench", logger)
	if err != nil {
		return err
	}
	defer closeAgent()
	d.Options.Download.Mode = mode
	if err := d.CheckIn(ctx); err != nil {
		return err
	}
	for _, r := range d.Updates() {
		if r.State != agent.StateInstalled && r.State != agent.StatePendingReboot {
			return fmt.Errorf("%s %s: %s", r.Key, r.State, r.Reason)
		}
	}
	return nil
}

// aptPrepare points the root's apt at the loopback repository and runs
// apt-get update (not timed).
func (b *bench) aptPrepare(root string) error {
	os.RemoveAll(filepath.Join(root, "etc/apt/sources.list.d"))
	os.MkdirAll(filepath.Join(root, "etc/apt/sources.list.d"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/apt/sources.list"), []byte("deb [trusted=yes] "+b.aptURL+" ./\n"), 0o644)
	return chroot(root, "apt-get", "update", "-q")
}

func (b *bench) aptDownloadDpkg(root string) error {
	if err := chroot(root, append([]string{"apt-get", "install", "-y", "-q", "--download-only"}, b.names...)...); err != nil {
		return err
	}
	return chroot(root, "sh", "-c", "dpkg --force-confdef --force-confold -i /var/cache/apt/archives/*.deb")
}

func (b *bench) aptInstall(root string) error {
	return chroot(root, append([]string{"apt-get", "install", "-y", "-q", "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"}, b.names...)...)
}

// check fails unless every package is installed at the .deb's version and
// dpkg --audit is clean.
func (b *bench) check(root string) error {
	for _, d := range b.debs {
		info, err := debpkg.ReadFile(d)
		if err != nil {
			return err
		}
		out, _ := exec.Command("chroot", root, "dpkg-query", "-W", "-f", "${Version} ${db:Status-Status}", info.Name).Output()
		if string(out) != info.Version+" installed" {
			return fmt.Errorf("%s is %q, want %s installed", info.Name, out, info.Version)
		}
	}
	if out, err := exec.Command("chroot", root, "dpkg", "--audit").CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		return fmt.Errorf("dpkg --audit: %v %s", err, out)
	}
	return nil
}

func chroot(root string, args ...string) error {
	cmd := exec.Command("chroot", append([]string{root}, args...)...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C"}
	if out, err := cmd.CombinedOutput(); err != nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) > 5 {
			lines = lines[len(lines)-5:]
		}
		return fmt.Errorf("chroot %s: %v: %s", strings.Join(args, " "), err, strings.Join(lines, " | "))
	}
	return nil
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
