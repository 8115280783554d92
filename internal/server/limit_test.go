package server

import (
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// TestConnLimiterTotalCap: over the total cap a new connection is closed at
// accept whoever it comes from, and a closed connection frees its slot.
func TestConnLimiterTotalCap(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var refused atomic.Int32
	cl := limitConns(ln, 100, 3, func(string) { refused.Add(1) })
	defer cl.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := cl.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	var clients []net.Conn
	for _, src := range []string{"127.0.0.5", "127.0.0.6", "127.0.0.7", "127.0.0.8", "127.0.0.9"} {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
		c, err := d.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	var got []net.Conn
	for len(got) < 3 {
		select {
		case c := <-accepted:
			got = append(got, c)
		case <-time.After(5 * time.Second):
			t.Fatalf("%d connections accepted, want 3", len(got))
		}
	}
	waitFor(t, 5*time.Second, func() bool { open, _ := cl.counts(""); return open == 3 && refused.Load() == 2 })
	// One closes: a new client gets its slot.
	got[0].Close()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.10")}}
	c, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case c := <-accepted:
		c.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("a freed slot was not given to a new connection")
	}
}
