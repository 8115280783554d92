// Command agent measures the agent against a real update server on
// loopback: the resident memory of `bulwark agent run` once it has checked
// in and gone idle, and the CPU time of a check-in that finds nothing new
// (`bulwark agent run --once`, process start included), with curl fetching
// the same site timestamp over the same mutual TLS as the peer. It prints a
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
	bin := flag.String("bin", "bin/bulwark", "the bulwark binary to measure")
	runs := flag.Int("runs", 10, "check-ins to time")
	idle := flag.Duration("idle", 15*time.Second, "how long the daemon idles before its memory is read")
	flag.Parse()
	if err := run(*bin, *runs, *idle); err != nil {
		log.Fatal(err)
	}
}

func run(bin string, runs int, idle time.Duration) error {
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
		Mode: "auto", RebootCommand: []string{}, Socket: filepath.Join(work, "agent.sock")}); err != nil {
		return err
	}

	// Idle memory of the daemon after its first check-in.
	daemon := exec.Command(bin, "agent", "run", "--config", config, "--arch", "amd64")
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
			return fmt.Errorf("the daemon did not check in within a minute (last error: %v)", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(idle)
	rss, hwm := procMem(daemon.Process.Pid)
	anon, file := smaps(daemon.Process.Pid)
	daemon.Process.Kill()
	daemon.Wait()

	// The floor: the same binary started and blocked (a `bulwark agent
	// status` waiting on a socket that never answers) has every package
	// initialised and nothing else.
	hang, err := net.Listen("unix", filepath.Join(work, "hang.sock"))
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
	floorCmd := exec.Command(bin, "agent", "status", "--socket", filepath.Join(work, "hang.sock"))
	if err := floorCmd.Start(); err != nil {
		return err
	}
	time.Sleep(2 * time.Second)
	floor, _ := procMem(floorCmd.Process.Pid)
	floorAnon, floorFile := smaps(floorCmd.Process.Pid)
	floorCmd.Process.Kill()
	floorCmd.Wait()

	// CPU of check-ins with nothing new.
	var ours, peer []time.Duration
	for i := 0; i < runs; i++ {
		c := exec.Command(bin, "agent", "run", "--once", "--config", config, "--arch", "amd64")
		c.Stdout, c.Stderr = io.Discard, io.Discard
		if err := c.Run(); err != nil {
			return fmt.Errorf("agent run --once: %w", err)
		}
		ours = append(ours, c.ProcessState.UserTime()+c.ProcessState.SystemTime())
		p := exec.Command("curl", "-sS", "-o", "/dev/null", "--cacert", filepath.Join(work, "ca.pem"), "--cert", filepath.Join(work, "client.pem"), "--key", filepath.Join(state, "client.key"), srv.URL()+"/site/metadata/timestamp.json")
		if i == 0 {
			e, _ := agent.LoadEnrollment(state)
			os.WriteFile(filepath.Join(work, "ca.pem"), []byte(e.CA), 0o644)
			os.WriteFile(filepath.Join(work, "client.pem"), []byte(e.Certificate), 0o644)
		}
		if out, err := p.CombinedOutput(); err != nil {
			return fmt.Errorf("curl: %v %s", err, out)
		}
		peer = append(peer, p.ProcessState.UserTime()+p.ProcessState.SystemTime())
	}
	mo, mp := median(ours), median(peer)
	fmt.Println("| measure | bulwark agent | peer | ratio |")
	fmt.Println("|---|---|---|---|")
	fmt.Printf("| idle RSS after the first check-in (%s idle) | %.1f MiB (peak %.1f MiB; %.1f MiB anonymous, %.1f MiB mapped from the binary) | — | goal ≤ 20 MiB |\n",
		idle, float64(rss)/1024, float64(hwm)/1024, float64(anon)/1024, float64(file)/1024)
	fmt.Printf("| the binary started and blocked, for comparison (`agent status` on a silent socket) | %.1f MiB (%.1f MiB anonymous, %.1f MiB mapped from the binary) | — | — |\n",
		float64(floor)/1024, float64(floorAnon)/1024, float64(floorFile)/1024)
	fmt.Printf("| CPU (user+sys) of a check-in with nothing new, median of %d | %s (`agent run --once`, process start included) | %s (curl of the site timestamp, same mTLS) | %.1f× |\n",
		runs, mo.Round(100*time.Microsecond), mp.Round(100*time.Microsecond), float64(mo)/float64(mp))
	return nil
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
