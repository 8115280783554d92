package agent

import (
	"context"
	"math/rand/v2"
	"time"
)

// Schedule is when the agent checks in: every Interval plus a random jitter
// (so a fleet that booted together does not check in together), sooner when
// the network comes back, and with exponential backoff and jitter while the
// server cannot be reached.
type Schedule struct {
	Interval time.Duration // detection_interval; default 22h
	// Current, when set, gives the interval in effect before every wait
	// (the group policy may change it at a check-in); 0 keeps Interval.
	Current    func() time.Duration
	Jitter     time.Duration // up to this much is added at random; default Interval/10
	MinBackoff time.Duration // first retry after a failure; default 1m
	MaxBackoff time.Duration // default Interval
	// Settle is how long to wait after a network change before checking in,
	// so that a link that flaps triggers one check-in; default 5s.
	Settle time.Duration
	// Scheduled, when set, is told the time of every next check-in as
	// Loop schedules it (agent status shows it).
	Scheduled func(next time.Time)
}

func (s Schedule) withDefaults() Schedule {
	if s.Interval <= 0 {
		s.Interval = 22 * time.Hour
	}
	if s.Jitter < 0 {
		s.Jitter = 0
	} else if s.Jitter == 0 {
		s.Jitter = s.Interval / 10
	}
	if s.MinBackoff <= 0 {
		s.MinBackoff = time.Minute
	}
	if s.MaxBackoff <= 0 {
		s.MaxBackoff = s.Interval
	}
	if s.Settle <= 0 {
		s.Settle = 5 * time.Second
	}
	return s
}

// next is the wait before the next check-in after one that succeeded
// (failures == 0) or after that many failures in a row.
func (s Schedule) next(failures int, rnd *rand.Rand) time.Duration {
	s = s.withDefaults()
	if failures == 0 {
		return s.Interval + time.Duration(rnd.Int64N(int64(s.Jitter)+1))
	}
	d := s.MinBackoff
	for i := 1; i < failures && d < s.MaxBackoff; i++ {
		d *= 2
	}
	if d > s.MaxBackoff {
		d = s.MaxBackoff
	}
	// Full jitter in the upper half: between d/2 and d.
	return d/2 + time.Duration(rnd.Int64N(int64(d/2)+1))
}

// Loop runs check-in until ctx ends: once at start, then on the schedule,
// and early (after Settle) whenever netChanged fires. A failed check-in is
// retried with backoff; the failure is passed to onError.
func (s Schedule) Loop(ctx context.Context, checkIn func(context.Context) error, netChanged <-chan struct{}, onError func(error, time.Duration)) {
	given := s
	s = s.withDefaults()
	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0x6275_6c77_6172_6b))
	failures := 0
	for {
		if err := checkIn(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
		} else {
			failures = 0
		}
		if given.Current != nil {
			if iv := given.Current(); iv > 0 && iv != s.Interval {
				cur := given
				cur.Interval = iv
				s = cur.withDefaults()
			}
		}
		wait := s.next(failures, rnd)
		if failures > 0 && onError != nil {
			onError(checkInError{failures}, wait)
		}
		if s.Scheduled != nil {
			s.Scheduled(time.Now().Add(wait))
		}
		timer := time.NewTimer(wait)
	waiting:
		for {
			select {
			case <-ctx.Done():
				timer.Stop()
				return
			case <-timer.C:
				break waiting
			case <-netChanged:
				// The network came back or changed: check in soon, once.
				timer.Reset(s.Settle)
				if s.Scheduled != nil {
					s.Scheduled(time.Now().Add(s.Settle))
				}
			}
		}
	}
}

type checkInError struct{ failures int }

func (e checkInError) Error() string {
	if e.failures == 1 {
		return "check-in failed"
	}
	return "check-in failed " + itoa(e.failures) + " times in a row"
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}
