// Package slowlink is a TCP relay on loopback that passes what a server
// sends at a set rate, for tests that must watch a transfer while it runs
// (a sync's progress). TLS passes through it untouched. Tests only: it must
// never be used to shape real traffic.
package slowlink

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"

	"golang.org/x/time/rate"
)

// Start relays a new loopback port to target ("host:port"), passing what
// the target sends at most bytesPerSec over all connections together (what
// the client sends goes at full speed). It returns the relay's address and
// stops at the end of the test.
func Start(t testing.TB, target string, bytesPerSec int) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	const chunk = 16 << 10
	lim := rate.NewLimiter(rate.Limit(bytesPerSec), chunk)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	track := func(c net.Conn) {
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
	}
	t.Cleanup(func() {
		cancel()
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			track(c)
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			track(up)
			wg.Add(2)
			go func() {
				defer wg.Done()
				io.Copy(up, c)
				up.Close()
			}()
			go func() {
				defer wg.Done()
				defer c.Close()
				buf := make([]byte, chunk)
				for {
					n, err := up.Read(buf)
					if n > 0 {
						if lim.WaitN(ctx, n) != nil {
							return
						}
						if _, werr := c.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}
