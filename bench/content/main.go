// Command content measures how fast the update server serves a payload to
// one client from each content store: the repository directory (the
// default) and S3-compatible object storage (a real versitygw on loopback,
// --content-store), against the peer, curl fetching the same object from
// versitygw directly (signed with --aws-sigv4). Every download is curl's,
// over loopback; the server's over HTTPS (TLS 1.3) and over its plain HTTP
// listener, versitygw's over plain HTTP, as a server reaches its object
// store on a private link. Each runs
// -rounds times, alternating, and the best is kept. It prints a Markdown
// table. Run it with bench/content/run.sh.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/bulwarkhq/bulwark/bench/internal/benchrepo"
	"github.com/bulwarkhq/bulwark/internal/content"
	"github.com/bulwarkhq/bulwark/internal/server"
	"github.com/bulwarkhq/bulwark/internal/tuf"
)

func main() {
	size := flag.Int64("bytes", 512<<20, "size of the payload")
	rounds := flag.Int("rounds", 3, "downloads from each (the best is kept)")
	vgw := flag.String("versitygw", "versitygw", "the versitygw binary")
	flag.Parse()
	ctx := context.Background()
	work, err := os.MkdirTemp("", "bulwark-bench-content-")
	if err != nil {
		fatalf("%v", err)
	}
	atExit(func() { os.RemoveAll(work) })
	defer runAtExit()

	vendor := filepath.Join(work, "vendor")
	if _, err := benchrepo.Build(ctx, vendor, 1, *size); err != nil {
		fatalf("%v", err)
	}
	ms, _ := filepath.Glob(filepath.Join(vendor, tuf.TargetsDir, "updates", "BW-000001", "*.tar.zst"))
	if len(ms) != 1 {
		fatalf("payload: %v", ms)
	}
	rel := "updates/BW-000001/" + filepath.Base(ms[0])

	// versitygw over a directory of its own, the key in its environment.
	ak, sk := random(10), random(20)
	addr := freeAddr()
	gw := exec.Command(*vgw, "--port", addr, "--quiet", "posix", mkdir(filepath.Join(work, "s3")))
	gw.Env = append(os.Environ(), "ROOT_ACCESS_KEY_ID="+ak, "ROOT_SECRET_ACCESS_KEY="+sk)
	if err := gw.Start(); err != nil {
		fatalf("versitygw: %v (scripts/setup.d/versitygw.sh installs it)", err)
	}
	atExit(func() { gw.Process.Kill(); gw.Wait() })
	waitUp(addr)
	mc, err := minio.New(addr, &minio.Options{Creds: credentials.NewStaticV4(ak, sk, ""), BucketLookup: minio.BucketLookupPath})
	if err != nil {
		fatalf("%v", err)
	}
	if err := mc.MakeBucket(ctx, "bulwark", minio.MakeBucketOptions{}); err != nil {
		fatalf("%v", err)
	}
	st, err := content.OpenS3(ctx, content.S3Config{URL: "s3://bulwark/site", Endpoint: "http://" + addr, AccessKeyID: ak, SecretAccessKey: sk})
	if err != nil {
		fatalf("%v", err)
	}

	dirURL, dirPlain, dirCA := startServer(ctx, filepath.Join(work, "dir"), vendor, nil)
	s3URL, s3Plain, s3CA := startServer(ctx, filepath.Join(work, "s3srv"), vendor, st)
	curlCfg := filepath.Join(work, "curl-s3.conf")
	if err := os.WriteFile(curlCfg, []byte(fmt.Sprintf("user = \"%s:%s\"\naws-sigv4 = \"aws:amz:us-east-1:s3\"\nheader = \"x-amz-content-sha256: UNSIGNED-PAYLOAD\"\n", ak, sk)), 0o600); err != nil {
		fatalf("%v", err)
	}
	type src struct {
		name string
		args []string
	}
	srcs := []src{
		{"bulwark server, repository directory (HTTPS)", []string{"--cacert", dirCA, dirURL + "/repos/debian/targets/" + rel}},
		{"bulwark server, S3 content store (HTTPS)", []string{"--cacert", s3CA, s3URL + "/repos/debian/targets/" + rel}},
		{"bulwark server, repository directory (plain HTTP, --http)", []string{dirPlain + "/repos/debian/targets/" + rel}},
		{"bulwark server, S3 content store (plain HTTP, --http)", []string{s3Plain + "/repos/debian/targets/" + rel}},
		{"peer: versitygw directly (HTTP, SigV4)", []string{"-K", curlCfg, "http://" + addr + "/bulwark/site/debian/targets/" + rel}},
	}
	best := make([]time.Duration, len(srcs))
	for r := 0; r < *rounds; r++ {
		for i, s := range srcs {
			d, n := curl(s.args)
			if n != *size {
				fatalf("%s: %d bytes, want %d", s.name, n, *size)
			}
			if best[i] == 0 || d < best[i] {
				best[i] = d
			}
		}
	}
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("Payload: %d MiB, one client (curl), best of %d alternating rounds; load average at the end: %s.\n\n", *size>>20, *rounds, strings.Join(strings.Fields(string(load))[:3], " "))
	fmt.Println("| source | best time | MiB/s | vs. versitygw directly |")
	fmt.Println("|---|---:|---:|---:|")
	peer := best[len(best)-1]
	for i, s := range srcs {
		mibs := float64(*size) / (1 << 20) / best[i].Seconds()
		fmt.Printf("| %s | %.2f s | %.0f | %.2f× |\n", s.name, best[i].Seconds(), mibs, peer.Seconds()/best[i].Seconds())
	}
}

// startServer runs an update server hosting the vendor repository, with
// the given content store, synced (so its targets are in the store).
func startServer(ctx context.Context, dir, vendor string, st content.Store) (url, plainURL, caFile string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fatalf("%v", err)
	}
	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fatalf("%v", err)
	}
	plainURL = "http://" + plain.Addr().String()
	url = "https://localhost:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	cfg := server.Config{DataDir: filepath.Join(dir, "data"), PublicURL: url, Vendors: []server.HostedVendor{{Name: "debian", Dir: vendor}},
		Logger: slog.New(slog.DiscardHandler), Content: st}
	srv, _, err := server.Open(ctx, cfg)
	if err != nil {
		fatalf("%v", err)
	}
	if _, err := srv.SyncAll(ctx, "", "bench"); err != nil {
		fatalf("%v", err)
	}
	ready := make(chan struct{})
	go srv.Serve(ctx, ln, plain, func() { close(ready) })
	<-ready
	caFile = filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, srv.CACertPEM(), 0o644); err != nil {
		fatalf("%v", err)
	}
	return url, plainURL, caFile
}

// curl downloads once and returns the time and the bytes curl reports.
func curl(args []string) (time.Duration, int64) {
	out, err := exec.Command("curl", append([]string{"-sSf", "-o", "/dev/null", "-w", "%{time_total} %{size_download}"}, args...)...).Output()
	if err != nil {
		fatalf("curl %v: %v", args, err)
	}
	var secs float64
	var n int64
	if _, err := fmt.Sscanf(string(out), "%g %d", &secs, &n); err != nil {
		fatalf("curl output %q: %v", out, err)
	}
	return time.Duration(secs * float64(time.Second)), n
}

// cleanups run at the end and before a fatal error's exit, so that a
// failed run leaves no versitygw running and no work directory behind.
var cleanups []func()

func atExit(f func()) { cleanups = append(cleanups, f) }

func runAtExit() {
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	cleanups = nil
}

func fatalf(format string, args ...any) {
	runAtExit()
	log.Fatalf(format, args...)
}

func random(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fatalf("%v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitUp(addr string) {
	for i := 0; i < 200; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	fatalf("versitygw did not start on %s", addr)
}

func mkdir(p string) string {
	if err := os.MkdirAll(p, 0o755); err != nil {
		fatalf("%v", err)
	}
	return p
}
