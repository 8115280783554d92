package server

import (
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// ipLimiter is a token bucket per client address, for the endpoints anyone
// can reach without credentials (enrollment): guessing tokens or filling the
// log costs the guesser time. The map is bounded; when full it starts over,
// which only ever forgives.
type ipLimiter struct {
	mu    sync.Mutex
	every rate.Limit
	burst int
	m     map[string]*rate.Limiter
}

const maxLimiterEntries = 10000

func newIPLimiter(every rate.Limit, burst int) *ipLimiter {
	return &ipLimiter{every: every, burst: burst, m: map[string]*rate.Limiter{}}
}

func (l *ipLimiter) allow(r *http.Request, now time.Time) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	l.mu.Lock()
	lim := l.m[host]
	if lim == nil {
		if len(l.m) >= maxLimiterEntries {
			l.m = map[string]*rate.Limiter{}
		}
		lim = rate.NewLimiter(l.every, l.burst)
		l.m[host] = lim
	}
	l.mu.Unlock()
	return lim.AllowN(now, 1)
}
