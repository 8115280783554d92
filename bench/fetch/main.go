// Command fetch is the download benchmark's helper: it writes test payloads
// (gen), serves a directory over HTTP with Range and HEAD (serve), and
// downloads one file through internal/fetch's File (get), printing what it
// achieved. bench/fetch/run.sh drives it against curl as the peer, on
// loopback and inside network namespaces with a shaped link.
//
// It is a benchmark tool, not a test, and not part of the agent: it must not
// be imported, and it binds only the address it is given.
package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"golang.org/x/time/rate"

	"github.com/bulwarkhq/bulwark/internal/fetch"
)

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "bench/fetch:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("want a subcommand: gen, serve or get")
	}
	switch args[0] {
	case "gen":
		return gen(args[1:])
	case "serve":
		return serve(ctx, args[1:])
	case "get":
		return get(ctx, args[1:])
	}
	return fmt.Errorf("unknown subcommand %q; want gen, serve or get", args[0])
}

// gen writes -size pseudo-random bytes to -out and prints their SHA-256.
func gen(args []string) error {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	out := fs.String("out", "", "file to write")
	size := fs.Int64("size", 0, "bytes")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || *size <= 0 {
		return errors.New("gen: want -out FILE and -size BYTES > 0")
	}
	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	w := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
	r := rand.NewChaCha8([32]byte{42})
	if _, err := io.CopyN(w, r, *size); err != nil {
		return fmt.Errorf("gen: %w", err)
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("gen: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("gen: %w", err)
	}
	fmt.Println(hex.EncodeToString(h.Sum(nil)))
	return nil
}

// serve serves -dir on -addr until interrupted.
func serve(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	dir := fs.String("dir", ".", "directory to serve")
	cc := fs.String("cc", "", "TCP congestion control for served connections (e.g. cubic, bbr; empty: the system's)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(*dir)), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ccListener{ln, *cc}) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		return srv.Close()
	}
}

// ccListener sets the congestion control algorithm of each accepted
// connection, so that the sender's algorithm is a chosen one rather than
// whatever the machine defaults to.
type ccListener struct {
	net.Listener
	cc string
}

func (l ccListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil || l.cc == "" {
		return conn, err
	}
	raw, err := conn.(*net.TCPConn).SyscallConn()
	if err != nil {
		conn.Close()
		return nil, err
	}
	var serr error
	if err := raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptString(int(fd), syscall.IPPROTO_TCP, syscall.TCP_CONGESTION, l.cc)
	}); err != nil || serr != nil {
		conn.Close()
		return nil, fmt.Errorf("set congestion control %q: %v %v", l.cc, err, serr)
	}
	return conn, nil
}

// get downloads -url to -out through fetch.File and prints one line:
// "bytes=N seconds=S rate=BYTES_PER_SECOND". With -for it stops after that
// long (or at SIGINT/SIGTERM) and reports what arrived by then; with -trace
// it appends "unix_ms bytes" every 100ms to that file.
func get(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("get", flag.ContinueOnError)
	url := fs.String("url", "", "source URL")
	out := fs.String("out", "", "destination file")
	size := fs.Int64("size", 0, "wanted length")
	sum := fs.String("sha256", "", "wanted SHA-256")
	limit := fs.Int64("rate", 0, "bandwidth limit in bytes per second (0: none)")
	burst := fs.Int("burst", 32<<10, "limiter burst in bytes")
	mode := fs.String("mode", "foreground", "foreground or background")
	target := fs.Duration("target", 0, "background mode's queuing delay target (0: the default)")
	dur := fs.Duration("for", 0, "stop after this long (0: until done)")
	trace := fs.String("trace", "", "append progress samples to this file")
	verbose := fs.Bool("v", false, "log pacing decisions to stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	opts := fetch.Options{Logger: slog.New(slog.DiscardHandler)}
	if *verbose {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if *limit > 0 {
		opts.Limiter = rate.NewLimiter(rate.Limit(*limit), *burst)
	}
	fo := fetch.FileOptions{Limits: fetch.Limits{SpeedWindow: time.Minute}}
	switch *mode {
	case "foreground":
	case "background":
		fo.Mode = fetch.Background
		fo.Background.Target = *target
	default:
		return fmt.Errorf("get: -mode %q; want foreground or background", *mode)
	}
	var tf *os.File
	if *trace != "" {
		f, err := os.OpenFile(*trace, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return err
		}
		defer f.Close()
		tf = f
	}
	var done int64
	var last time.Time
	fo.Progress = func(d, _ int64) {
		done = d
		if tf != nil && time.Since(last) >= 100*time.Millisecond {
			last = time.Now()
			fmt.Fprintf(tf, "%d %d\n", last.UnixMilli(), d)
		}
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *dur > 0 {
		// A cancel, not a deadline: the limiter refuses waits that would
		// pass a deadline, which would end the download early with an error.
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		t := time.AfterFunc(*dur, cancel)
		defer t.Stop()
	}
	c := fetch.New(opts)
	start := time.Now()
	err := c.File(ctx, *url, *out, fetch.Want{Length: *size, SHA256: strings.ToLower(*sum)}, fo)
	el := time.Since(start)
	if err != nil && ctx.Err() == nil {
		return err
	}
	if err != nil {
		// Stopped early: count what is in the partial file.
		if fi, serr := os.Stat(*out + fetch.PartialSuffix); serr == nil {
			done = fi.Size()
		}
		os.Remove(*out + fetch.PartialSuffix)
		os.Remove(*out + fetch.MetaSuffix)
	}
	fmt.Printf("bytes=%d seconds=%.3f rate=%.0f complete=%t\n", done, el.Seconds(), float64(done)/el.Seconds(), err == nil)
	return nil
}
