// Command agent measures the agent against a real update server on
// loopback, for the lean agent build (bulwark-agent, -tags agentonly) and the
// full binary (bulwark agent): the resident memory of `run` once it has
// checked in and gone idle, and the CPU time of a check-in that finds
// nothing new (the daemon's, and `run --once`'s, process start included;
// `run --once --full` for the whole cycle), with curl fetching the
// same site timestamp over the same mutual TLS as the peer. It prints a
// Markdown table. Run it with bench/agent/run.sh.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/bulwarkhq/bulwark/bench/internal/benchsrv"
	"github.com/bulwarkhq/bulwark/internal/agent"
	"github.com/bulwarkhq/bulwark/internal/install"
	"github.com/bulwarkhq/bulwark/internal/tuf"
	"github.com/bulwarkhq/bulwark/internal/wire"
)

func main() {
	full := flag.String("bin", "bin/bulwark", "the full bulwark binary")
	lean := flag.String("lean", "bin/bulwark-agent", "the lean agent binary (go build -tags agentonly ./cmd/bulwark)")
	runs := flag.Int("runs", 10, "check-ins to time for each binary")
	idle := flag.Duration("idle", 15*time.Second, "how long the daemon idles before its memory is read")
	flag.Parse()
	if err := run(*full, *lean, *runs, *idle); err != nil {
		log.Fatal(err)
	}
}

func run(full, lean string, runs int, idle time.Duration) error {
	ctx := context.Background()
	work, err := os.MkdirTemp("", "bulwark-bench-agent-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	// A vendor repository with one small update, served by a server.
	vendorDir := filepath.Join(work, "vendor")
	vr, err := tuf.Init(vendorDir, tuf.InitOptions{Name: "debian"}, tuf.Options{})
	if err != nil {
		return err
	}
	os.WriteFile(filepath.Join(work, "p.tar.zst"), bytes.Repeat([]byte("x"), 4096), 0o644)
	os.WriteFile(filepath.Join(work, "u.yaml"), []byte("id: BW-1\ntitle: t\nproduct: debian-12\nclassification: security\nseverity: low\nreleased: 2026-11-20\nreboot: never\napplies_to: [{os: {id: ubuntu}}]\ninstaller: {type: archive, prefix: /opt/bw-bench}\npayloads: [{file: p.tar.zst}]\n"), 0o644)
	if _, err := vr.Publish(ctx, filepath.Join(work, "u.yaml"), tuf.PublishOptions{}); err != nil {
		return err
	}
	vr.Close()
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	srv, err := benchsrv.Start(sctx, work, vendorDir)
	if err != nil {
		return err
	}
	api := srv.API
	if _, err := api("POST", "/api/v1/groups", map[string]string{"name": "web"}); err != nil {
		return err
	}
	if _, err := api("PUT", "/api/v1/groups/web/approvals/debian/BW-1", map[string]any{"action": "install"}); err != nil {
		return err
	}
	out, err := api("POST", "/api/v1/tokens", map[string]any{"kind": "enroll", "group": "web"})
	if err != nil {
		return err
	}
	var tok struct{ Token string }
	json.Unmarshal(out, &tok)

	root := filepath.Join(work, "root")
	if err := install.InitRoot(root); err != nil {
		return err
	}
	for f, c := range map[string]string{"etc/os-release": "ID=debian\nVERSION_ID=\"12\"\n", "etc/machine-id": "0123456789abcdef0123456789abcdef\n", "etc/hostname": "bench\n"} {
		os.MkdirAll(filepath.Join(root, filepath.Dir(f)), 0o755)
		os.WriteFile(filepath.Join(root, f), []byte(c), 0o644)
	}
	state := filepath.Join(work, "state")
	siteRoot, err := srv.SiteRootFingerprint()
	if err != nil {
		return err
	}
	if _, err := agent.Enroll(ctx, agent.EnrollOptions{Server: srv.URL(), Token: tok.Token, CAFingerprint: srv.CAFingerprint(), SiteRootFingerprint: siteRoot, StateDir: state,
		Facts: wire.Facts{MachineID: "0123456789abcdef0123456789abcdef", Hostname: "bench", OS: "debian 12", Arch: "amd64"}}); err != nil {
		return err
	}
	config := filepath.Join(work, "agent.yaml")
	if err := agent.SaveConfig(config, agent.FileConfig{Server: srv.URL(), CAFingerprint: srv.CAFingerprint(), StateDir: state, Root: root,
		Mode: "auto", RebootCommand: []string{}, Socket: filepath.Join(work, "agent.sock"),
		// The shortest interval the agent takes, so that the daemon's
		// second check-in (a conditional request answered 304) comes
		// within the run.
		DetectionInterval: "1m"}); err != nil {
		return err
	}

	e, err := agent.LoadEnrollment(state)
	if err != nil {
		return err
	}
	os.WriteFile(filepath.Join(work, "ca.pem"), []byte(e.CA), 0o644)
	os.WriteFile(filepath.Join(work, "client.pem"), []byte(e.Certificate), 0o644)
	curl := func() *exec.Cmd {
		return exec.Command("curl", "-sS", "-o", "/dev/null", "--cacert", filepath.Join(work, "ca.pem"), "--cert", filepath.Join(work, "client.pem"),
			"--key", filepath.Join(state, "client.key"), srv.URL()+"/site/metadata/timestamp.json")
	}

	builds := []build{{name: "bulwark-agent (lean build)", argv: []string{lean}}, {name: "bulwark agent (full build)", argv: []string{full, "agent"}}}
	var curlCPU []time.Duration
	for i := range builds {
		b := &builds[i]
		if err := b.measureMemory(ctx, work, config, idle); err != nil {
			return fmt.Errorf("%s: %w", b.name, err)
		}
		// CPU of check-ins with nothing new, each next to a curl of the
		// same size over the same mutual TLS: `run --once` (the daemon's
		// full cycle above is fresh, so it is a conditional request
		// answered 304 and no cycle; a run that says otherwise is not
		// counted), then `run --once --full` (the whole cycle).
		for range runs {
			var out bytes.Buffer
			c := b.cmd("run", "--once", "--config", config, "--arch", "amd64")
			c.Stdout, c.Stderr = &out, io.Discard
			if err := c.Run(); err != nil {
				return fmt.Errorf("%s run --once: %w", b.name, err)
			}
			if strings.Contains(out.String(), "No cycle ran") {
				b.cpu = append(b.cpu, c.ProcessState.UserTime()+c.ProcessState.SystemTime())
			} else {
				b.notNoop++
			}
			p := curl()
			if out, err := p.CombinedOutput(); err != nil {
				return fmt.Errorf("curl: %v %s", err, out)
			}
			curlCPU = append(curlCPU, p.ProcessState.UserTime()+p.ProcessState.SystemTime())
			c = b.cmd("run", "--once", "--full", "--config", config, "--arch", "amd64")
			c.Stdout, c.Stderr = io.Discard, io.Discard
			if err := c.Run(); err != nil {
				return fmt.Errorf("%s run --once --full: %w", b.name, err)
			}
			b.fullCPU = append(b.fullCPU, c.ProcessState.UserTime()+c.ProcessState.SystemTime())
		}
		if len(b.cpu) == 0 {
			return fmt.Errorf("%s: no run --once said \"No cycle ran\" after a fresh full cycle", b.name)
		}
	}
	mp := median(curlCPU)
	fmt.Println("| measure | build | agent | curl (same mTLS) | ratio / goal |")
	fmt.Println("|---|---|---|---|---|")
	for _, b := range builds {
		fmt.Printf("| idle RSS after the first check-in (%s idle) | %s | %.1f MiB (peak %.1f MiB; %.1f MiB anonymous, %.1f MiB mapped from the binary) | — | goal ≤ 15 MiB: %s |\n",
			idle, b.name, mib(b.rss), mib(b.hwm), mib(b.anon), mib(b.file), met(mib(b.rss) <= 15))
	}
	for _, b := range builds {
		fmt.Printf("| the binary started and blocked (`status` on a silent socket) | %s | %.1f MiB (%.1f MiB anonymous, %.1f MiB mapped from the binary) | — | — |\n",
			b.name, mib(b.floor), mib(b.floorAnon), mib(b.floorFile))
	}
	for _, b := range builds {
		r := float64(b.daemonCPU) / float64(mp)
		fmt.Printf("| CPU of the running daemon's check-in with nothing new (a conditional request answered 304 on a resumed TLS session, then the memory release; the scheduler's account over 5 s around it, less %.2f ms/s the idle daemon spends) | %s | %s | %s | %.1f× (goal ≤ 1.5×: %s) |\n",
			b.idleRate/1e6, b.name, b.daemonCPU.Round(10*time.Microsecond), mp.Round(100*time.Microsecond), r, met(r <= 1.5))
	}
	for _, b := range builds {
		mo := median(b.cpu)
		r := float64(mo) / float64(mp)
		skipped := ""
		if b.notNoop > 0 {
			skipped = fmt.Sprintf("; %d of %d runs ran a cycle and are not counted", b.notNoop, runs)
		}
		fmt.Printf("| CPU (user+sys) of a check-in with nothing new, median of %d (`run --once` within 6 h of a full cycle: a conditional request answered 304, \"No cycle ran\"; process start included%s) | %s | %s | %s (median of %d) | %.1f× (goal ≤ 1.5×: %s) |\n",
			len(b.cpu), skipped, b.name, mo.Round(100*time.Microsecond), mp.Round(100*time.Microsecond), len(curlCPU), r, met(r <= 1.5))
	}
	for _, b := range builds {
		mo := median(b.fullCPU)
		fmt.Printf("| CPU (user+sys) of a whole cycle with nothing new in a new process, median of %d (`run --once --full`: check-in, TUF refresh from the cache, plan, report) | %s | %s | %s | %.1f× (what `run --once` always did before; no goal) |\n",
			len(b.fullCPU), b.name, mo.Round(100*time.Microsecond), mp.Round(100*time.Microsecond), float64(mo)/float64(mp))
	}
	return nil
}

// build is one agent binary and what was measured of it.
type build struct {
	name string
	argv []string // the binary and the words before run/status

	rss, hwm, anon, file        int64           // KiB, the daemon idle after a check-in
	floor, floorAnon, floorFile int64           // KiB, the binary started and blocked
	cpu                         []time.Duration // run --once that ran no cycle
	notNoop                     int             // run --once that ran a cycle
	fullCPU                     []time.Duration // run --once --full
	daemonCPU                   time.Duration   // the daemon's check-in with nothing new
	idleRate                    float64         // CPU nanoseconds per second the idle daemon spends
}

func (b *build) cmd(args ...string) *exec.Cmd {
	return exec.Command(b.argv[0], append(append([]string{}, b.argv[1:]...), args...)...)
}

// measureMemory starts the daemon, waits for its first check-in, lets it
// idle and reads its memory; then reads the memory of the same binary
// started and blocked on a socket that never answers (every package
// initialised and nothing else).
func (b *build) measureMemory(ctx context.Context, work, config string, idle time.Duration) error {
	daemon := b.cmd("run", "--config", config, "--arch", "amd64")
	daemon.Stderr = io.Discard
	if err := daemon.Start(); err != nil {
		return err
	}
	cc := agent.NewControlClient(filepath.Join(work, "agent.sock"))
	deadline := time.Now().Add(time.Minute)
	for {
		st, err := cc.Status(ctx)
		if err == nil && !st.LastCheckIn.IsZero() {
			break
		}
		if time.Now().After(deadline) {
			daemon.Process.Kill()
			daemon.Wait()
			return fmt.Errorf("the daemon did not check in within a minute (last error: %v)", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	c0 := procCPU(daemon.Process.Pid)
	time.Sleep(idle)
	// What the daemon spends doing nothing (the runtime's timers, and on a
	// busy machine the network-change events it listens to), per second.
	b.idleRate = float64(procCPU(daemon.Process.Pid)-c0) / idle.Seconds()
	b.rss, b.hwm = procMem(daemon.Process.Pid)
	b.anon, b.file = smaps(daemon.Process.Pid)

	// The daemon's next check-in finds nothing new: its cost is the
	// daemon's CPU time from before to after it, with nothing asking the
	// daemon anything in between (the time comes from NextCheckIn).
	first, err := cc.Status(ctx)
	if err != nil || first.NextCheckIn.IsZero() {
		daemon.Process.Kill()
		daemon.Wait()
		return fmt.Errorf("status before the second check-in: %+v %v", first, err)
	}
	// A window of a few seconds around the check-in, less what the
	// daemon spends idle in as long.
	const before, after = time.Second, 4 * time.Second
	time.Sleep(time.Until(first.NextCheckIn) - before)
	cpu0 := procCPU(daemon.Process.Pid)
	time.Sleep(before + after)
	b.daemonCPU = procCPU(daemon.Process.Pid) - cpu0 - time.Duration(b.idleRate*(before+after).Seconds())
	st, err := cc.Status(ctx)
	if err != nil || !st.LastCheckIn.After(first.LastCheckIn) || st.LastError != "" {
		daemon.Process.Kill()
		daemon.Wait()
		return fmt.Errorf("the second check-in did not happen or failed: %+v %v", st, err)
	}
	daemon.Process.Signal(os.Interrupt)
	daemon.Wait()

	sock := filepath.Join(work, "hang.sock")
	os.Remove(sock)
	hang, err := net.Listen("unix", sock)
	if err != nil {
		return err
	}
	defer hang.Close()
	go func() {
		for {
			c, err := hang.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	floorCmd := b.cmd("status", "--socket", sock)
	if err := floorCmd.Start(); err != nil {
		return err
	}
	time.Sleep(2 * time.Second)
	b.floor, _ = procMem(floorCmd.Process.Pid)
	b.floorAnon, b.floorFile = smaps(floorCmd.Process.Pid)
	floorCmd.Process.Kill()
	floorCmd.Wait()
	return nil
}

func mib(kib int64) float64 { return float64(kib) / 1024 }

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "**not met**"
}

// procCPU is a process's CPU time so far, the sum over its threads of
// /proc/PID/task/TID/schedstat's first field (nanoseconds on the CPU; the
// scheduler's own account, not 10 ms ticks).
func procCPU(pid int) time.Duration {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	var total int64
	for _, t := range tasks {
		b, _ := os.ReadFile(t)
		if f := strings.Fields(string(b)); len(f) > 0 {
			n, _ := strconv.ParseInt(f[0], 10, 64)
			total += n
		}
	}
	return time.Duration(total)
}

// procMem reads VmRSS and VmHWM (KiB) of a process.
func procMem(pid int) (rss, hwm int64) {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 {
			v, _ := strconv.ParseInt(f[1], 10, 64)
			switch f[0] {
			case "VmRSS:":
				rss = v
			case "VmHWM:":
				hwm = v
			}
		}
	}
	return rss, hwm
}

// smaps reads the anonymous and file-backed resident memory (KiB).
func smaps(pid int) (anon, file int64) {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 {
			v, _ := strconv.ParseInt(f[1], 10, 64)
			switch f[0] {
			case "Anonymous:":
				anon = v
			case "Rss:":
				file += v
			}
		}
	}
	return anon, file - anon
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
