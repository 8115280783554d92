package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bulwarkhq/bulwark/internal/wire"
)

// enroll runs n real enrollments from one source address, c at once: each
// a new P-256 key and CSR and a new TLS connection, as n machines behind one
// NAT address enrolling with one token. A 429 is waited out (Retry-After)
// and sent again, as the agent does; the latency of a machine includes its
// waits.
func enroll(args []string) error {
	fs := flag.NewFlagSet("enroll", flag.ExitOnError)
	data := fs.String("data", "", "server data directory (for the CA certificate)")
	url := fs.String("url", "", "server base URL")
	tokenFile := fs.String("token-file", "", "file holding an enrollment token")
	n := fs.Int("n", 1000, "machines")
	conc := fs.Int("c", 32, "machines at once (below the server's 64 connections per address)")
	src := fs.String("src", "127.0.0.2", "the one source address")
	pids := fs.String("pid", "", "server process ids to measure")
	target := fs.String("target", "bulwark", "label")
	fs.Parse(args)
	tb, err := os.ReadFile(*tokenFile)
	if err != nil {
		return err
	}
	token := strings.TrimSpace(string(tb))
	pool, err := caPool(*data)
	if err != nil {
		return err
	}
	ip := net.ParseIP(*src)
	if ip == nil {
		return fmt.Errorf("-src %q: not an IP address", *src)
	}
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 30 * time.Second}
	ctx := context.Background()
	lat := make([]time.Duration, *n)
	var next, errs, throttled atomic.Int64
	var firstErr atomic.Value
	one := func(i int) error {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return err
		}
		der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "nat"}}, key)
		if err != nil {
			return err
		}
		mid := fmt.Sprintf("%032x", 1<<40+i)
		body, _ := json.Marshal(wire.EnrollRequest{Token: token, CSR: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})),
			Facts: wire.Facts{MachineID: mid, Hostname: "nat-" + strconv.Itoa(i), OS: "debian 12", Arch: "amd64"}})
		for {
			// A new connection per machine: machines share nothing but
			// the address.
			tr := &http.Transport{DialContext: d.DialContext, TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"},
				TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}
			req, _ := http.NewRequestWithContext(ctx, "POST", *url+"/agent/v1/enroll", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := (&http.Client{Transport: tr, Timeout: time.Minute}).Do(req)
			if err != nil {
				tr.CloseIdleConnections()
				return err
			}
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			tr.CloseIdleConnections()
			switch resp.StatusCode {
			case http.StatusCreated:
				return nil
			case http.StatusTooManyRequests:
				throttled.Add(1)
				secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
				time.Sleep(time.Duration(max(secs, 1)) * time.Second)
			default:
				return fmt.Errorf("enroll %d: %s %s", i, resp.Status, b)
			}
		}
	}
	before := readProc(parsePIDs(*pids))
	start := time.Now()
	var wg sync.WaitGroup
	for range *conc {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= *n {
					return
				}
				t := time.Now()
				if err := one(i); err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
				lat[i] = time.Since(t)
			}
		})
	}
	wg.Wait()
	el := time.Since(start)
	after := readProc(parsePIDs(*pids))
	r := summarize("enroll-one-address", *target, lat, el, before, after)
	r.Errors = errs.Load()
	if v, ok := firstErr.Load().(string); ok {
		r.FirstErrors = v
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{"result": r, "throttled": throttled.Load(), "source": *src})
}
