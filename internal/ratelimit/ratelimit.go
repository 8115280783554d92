// Package ratelimit holds the server's per-client token buckets: a client
// is an address prefix (an IPv4 address, an IPv6 /64), and the table of
// buckets is bounded without ever forgetting a client that is still being
// throttled.
//
// It must not know about HTTP routes or tokens: callers choose the key
// (Prefix of the peer address, or anything else such as a token id) and
// what a refusal means.
package ratelimit

import (
	"container/list"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Prefix is the key of a peer address ("host:port" or a bare host): the
// IPv4 address itself (/32), or the /64 of an IPv6 address, the block one
// subscriber or one host usually gets, so that an attacker cannot step
// through its own 2^64 addresses. IPv4 stays at /32: addresses are scarce
// (an attacker with a /24 gets 256 buckets, a bounded gain), while a /24
// key would let one host behind a shared office or cloud /24 throttle its
// neighbours. IPv4-mapped IPv6 addresses count as IPv4. Anything that does
// not parse is its own key.
func Prefix(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is4() {
		return ip.String()
	}
	p, _ := ip.Prefix(64)
	return p.String()
}

// Limiter is a token bucket per key, at most max keys. When the table is
// full the least recently used key is dropped, but only if its bucket has
// refilled (forgetting it forgives nothing); otherwise a new key shares one
// overflow bucket until an entry refills, so a flood of new keys cannot
// push a throttled attacker out of the table.
type Limiter struct {
	mu       sync.Mutex
	every    rate.Limit
	burst    int
	max      int
	lru      *list.List // of *entry, most recently used at the front
	m        map[string]*list.Element
	overflow *rate.Limiter
}

type entry struct {
	key string
	lim *rate.Limiter
}

// New returns a Limiter allowing burst events at once and then every events
// per second per key, for at most max keys.
func New(every rate.Limit, burst, max int) *Limiter {
	return &Limiter{every: every, burst: burst, max: max, lru: list.New(), m: map[string]*list.Element{},
		overflow: rate.NewLimiter(every, burst)}
}

// bucket returns key's bucket, creating it if there is room.
func (l *Limiter) bucket(key string, now time.Time) *rate.Limiter {
	if e, ok := l.m[key]; ok {
		l.lru.MoveToFront(e)
		return e.Value.(*entry).lim
	}
	if l.lru.Len() >= l.max {
		oldest := l.lru.Back()
		if oldest.Value.(*entry).lim.TokensAt(now) < float64(l.burst) {
			return l.overflow
		}
		l.lru.Remove(oldest)
		delete(l.m, oldest.Value.(*entry).key)
	}
	lim := rate.NewLimiter(l.every, l.burst)
	l.m[key] = l.lru.PushFront(&entry{key: key, lim: lim})
	return lim
}

// Allow takes one event from key's bucket and reports whether there was
// one.
func (l *Limiter) Allow(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bucket(key, now).AllowN(now, 1)
}

// Blocked reports whether key's bucket is empty, without taking anything,
// and how long until it holds one event again.
func (l *Limiter) Blocked(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var lim *rate.Limiter
	if e, ok := l.m[key]; ok {
		lim = e.Value.(*entry).lim
	} else if l.lru.Len() >= l.max && l.lru.Back().Value.(*entry).lim.TokensAt(now) < float64(l.burst) {
		lim = l.overflow
	} else {
		return false, 0
	}
	t := lim.TokensAt(now)
	if t >= 1 {
		return false, 0
	}
	if l.every <= 0 {
		return true, time.Hour // never refills: any wait is too short
	}
	return true, time.Duration((1 - t) / float64(l.every) * float64(time.Second))
}

// Len is the number of keys held.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lru.Len()
}
