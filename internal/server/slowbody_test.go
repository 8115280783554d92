package server

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestAttackSlowBodies: one client opens many connections, sends request
// headers with a long Content-Length and then nothing. Connections over
// the per-client cap are closed at accept, the accepted ones are closed
// when their body deadline passes, and requests of other clients are
// answered meanwhile. Bounded: 120 connections, a 1 s body deadline, a few
// seconds in all.
func TestAttackSlowBodies(t *testing.T) {
	const perClient, attackers = 16, 120
	bodyTimeout := time.Second
	ts := startServer(t, Config{MaxConnsPerClient: perClient, BodyTimeout: bodyTimeout})
	addr := strings.TrimPrefix(ts.url, "https://")
	legit := func() []time.Duration {
		var lat []time.Duration
		for i := range 10 {
			start := time.Now()
			code, _, _ := ts.do(ts.client, "GET", "/healthz", "", nil)
			if code != http.StatusOK {
				t.Fatalf("legitimate request %d: %d", i, code)
			}
			lat = append(lat, time.Since(start))
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		return lat
	}
	before := legit()

	// The attack, from 127.0.0.2.
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 5 * time.Second}
	var mu sync.Mutex
	var open []*tls.Conn
	refused := 0
	var wg sync.WaitGroup
	for range attackers {
		wg.Go(func() {
			c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				refused++
				return
			}
			fmt.Fprintf(c, "POST /agent/v1/enroll HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n{\"token\":")
			open = append(open, c)
		})
	}
	wg.Wait()
	t.Logf("attacker: %d connections accepted, %d refused at accept", len(open), refused)
	if len(open) > perClient {
		t.Fatalf("%d attacker connections accepted, cap %d", len(open), perClient)
	}
	if refused < attackers-perClient {
		t.Fatalf("only %d of %d connections over the cap refused", refused, attackers-perClient)
	}
	if _, n := ts.conns.counts("127.0.0.2"); n > perClient {
		t.Fatalf("server holds %d connections of the attacker, cap %d", n, perClient)
	}

	during := legit()
	t.Logf("legitimate /healthz latency before: median %v max %v; during the attack: median %v max %v",
		before[len(before)/2], before[len(before)-1], during[len(during)/2], during[len(during)-1])
	if during[len(during)-1] > bodyTimeout {
		t.Errorf("a legitimate request took %v during the attack, more than the attacker's body deadline", during[len(during)-1])
	}

	// Every accepted slow body is cut off by the deadline: the server
	// answers (408/400) or closes, well before the client would finish.
	deadline := time.Now().Add(bodyTimeout + 5*time.Second)
	for _, c := range open {
		c.SetReadDeadline(deadline)
		_, err := io.ReadAll(c)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("an attacker connection was still open %v after its body deadline", 5*time.Second)
		}
		c.Close()
	}
	// And the attacker's slots are free again.
	waitFor(t, 5*time.Second, func() bool { _, n := ts.conns.counts("127.0.0.2"); return n == 0 })
}

func waitFor(t testing.TB, max time.Duration, ok func() bool) {
	t.Helper()
	end := time.Now().Add(max)
	for !ok() {
		if time.Now().After(end) {
			t.Fatalf("condition not met within %v", max)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
