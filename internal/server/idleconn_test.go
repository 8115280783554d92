package server

import (
	"crypto/tls"
	"net/http"
	"runtime"
	rtmetrics "runtime/metrics"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/pki"
	"github.com/bulwarkhq/bulwark/internal/wire"
)

// BenchmarkIdleConnMemory measures what one open, idle agent connection
// (HTTP/1.1 over mutual TLS, after one check-in) costs the server: the
// growth of the Go heap and of goroutine stacks, after two collections,
// divided by the connections held (b.N). Reported as heap-KiB/conn and
// stack-KiB/conn. Client and server share the process: the stacks are the
// server's alone (the client is a bare tls.Conn, no goroutine), the heap
// includes the client's tls.Conn, so it is an upper bound for the server.
// Unlike bench/fleet's RSS figure it leaves out garbage not yet collected.
func BenchmarkIdleConnMemory(b *testing.B) {
	ts := startServer(b, Config{MaxConnsPerClient: 1 << 20, MaxConns: 1 << 20})
	a := ts.enroll(ts.newToken(TokenRequest{Kind: "enroll"}), machineA, "")
	cert := a.client.Transport.(*http.Transport).TLSClientConfig.GetClientCertificate
	tc, err := pki.PinnedClientConfig(ts.CAFingerprint())
	if err != nil {
		b.Fatal(err)
	}
	tc.GetClientCertificate = cert
	tc.NextProtos = []string{"http/1.1"}
	host := ts.url[len("https://"):]
	var conns []*tls.Conn
	b.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	// One check-in on each connection, then it stays open and idle.
	checkin := []byte("GET /agent/v1/checkin HTTP/1.1\r\nHost: " + host + "\r\n" + wire.MachineIDHeader + ": " + machineA + "\r\n\r\n")
	buf := make([]byte, 4096)
	before := memStats()
	for range b.N {
		c, err := tls.Dial("tcp", host, tc)
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, c)
		if _, err := c.Write(checkin); err != nil {
			b.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := c.Read(buf)
		if err != nil || n < 12 || string(buf[9:12]) != "200" {
			b.Fatalf("check-in: %q %v", buf[:n], err)
		}
	}
	time.Sleep(200 * time.Millisecond)
	after := memStats()
	n := float64(b.N)
	b.ReportMetric(float64(after.heap-before.heap)/n/1024, "heap-KiB/conn")
	b.ReportMetric(float64(after.stack-before.stack)/n/1024, "stack-KiB/conn")
	b.ReportMetric(float64(after.heap+after.stack-before.heap-before.stack)/n/1024, "KiB/conn")
}

type mem struct{ heap, stack uint64 }

func memStats() mem {
	runtime.GC()
	runtime.GC()
	s := []rtmetrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/stacks:bytes"}}
	rtmetrics.Read(s)
	return mem{heap: s[0].Value.Uint64(), stack: s[1].Value.Uint64()}
}
