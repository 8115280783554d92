package server

import (
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/bulwarkhq/bulwark/internal/ratelimit"
)

// Limits on what one client (an address prefix, ratelimit.Prefix) can make
// the server do before it has proven anything.
const (
	// Requests with a bad API token: a burst of 10 typos, then one every
	// two seconds; a client over it is answered 429 without its token
	// being looked at.
	authFailEvery, authFailBurst = 0.5, 10
	// limiterEntries bounds each limiter's table (ratelimit.Limiter keeps
	// clients that are still throttled when it is full).
	limiterEntries = 10000
	// Console sign-in attempts (console.go): per client prefix a burst of
	// 10, then one every 6 s; per user name a burst of 5, then one every
	// 12 s.
	signinAddrEvery, signinAddrBurst = 1.0 / 6, 10
	signinUserEvery, signinUserBurst = 1.0 / 12, 5

	// Connections: per client prefix and in all. Over either, a new
	// connection is closed at once.
	defaultMaxConnsPerClient = 64
	defaultMaxConns          = 4096
	// Request bodies must arrive within these (slow-body clients).
	defaultBodyTimeout = 30 * time.Second
	// The whole request for a connection that sends no body: headers.
	readHeaderTimeout = 10 * time.Second
)

func clientKey(r *http.Request) string { return ratelimit.Prefix(r.RemoteAddr) }

// tooMany answers 429 with a Retry-After of at least a second.
func tooMany(w http.ResponseWriter, wait time.Duration, what string) error {
	secs := int(wait.Seconds() + 0.999)
	if secs < 1 {
		secs = 1
	}
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	return errorf(http.StatusTooManyRequests, "too many %s from this address; try again in %d s", what, secs)
}

func newLimiter(every rate.Limit, burst int) *ratelimit.Limiter {
	return ratelimit.New(every, burst, limiterEntries)
}

// connLimiter caps open connections per client prefix and in all: a
// connection over a cap is closed as soon as it is accepted, before TLS,
// so slow or idle connections of one client cannot use up the server's
// file descriptors and goroutines for everyone.
type connLimiter struct {
	net.Listener
	perClient, total int

	mu     sync.Mutex
	open   int
	byKey  map[string]int
	refuse func(key string) // counts refusals (metrics)
}

func limitConns(ln net.Listener, perClient, total int, refuse func(string)) *connLimiter {
	return &connLimiter{Listener: ln, perClient: perClient, total: total, byKey: map[string]int{}, refuse: refuse}
}

func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := ratelimit.Prefix(c.RemoteAddr().String())
		l.mu.Lock()
		ok := l.open < l.total && l.byKey[key] < l.perClient
		if ok {
			l.open++
			l.byKey[key]++
		}
		l.mu.Unlock()
		if !ok {
			c.Close()
			if l.refuse != nil {
				l.refuse(key)
			}
			continue
		}
		return &limitedConn{Conn: c, release: func() { l.release(key) }}, nil
	}
}

func (l *connLimiter) release(key string) {
	l.mu.Lock()
	l.open--
	if l.byKey[key]--; l.byKey[key] <= 0 {
		delete(l.byKey, key)
	}
	l.mu.Unlock()
}

// counts returns the open connections in all and of one key (tests).
func (l *connLimiter) counts(key string) (int, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open, l.byKey[key]
}

type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
