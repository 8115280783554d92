package server

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"golang.org/x/time/rate"

	"github.com/bulwarkhq/bulwark/internal/ratelimit"
)

// EnrollLimits bound enrollment so that a fleet behind one NAT address
// enrolls at full speed with a valid token while token guessing stays
// throttled:
//
//   - Failed attempts (an unknown, expired, revoked or used-up token, or any
//     other refused request) count against the client's address prefix
//     (ratelimit.Prefix): after FailBurst of them the prefix gets one more
//     every 1/FailRate seconds, and any attempt from it, even with a valid
//     token, is answered 429 until then (letting a valid token through would
//     tell a guesser which guess was right). Successful enrollments cost the
//     prefix nothing, so 100,000 machines behind one address are not limited
//     by it.
//   - Enrollments with a valid token count against that token's id:
//     TokenBurst at once, then TokenRate a second, so a leaked token cannot
//     be used faster than that; past it the answer is 429 with Retry-After
//     (the agent waits and retries), and nothing counts against the prefix.
//
// Zero fields take the defaults below.
type EnrollLimits struct {
	FailRate   float64 `yaml:"fail_rate" json:"fail_rate"`     // failed attempts per second per address prefix, after the burst
	FailBurst  int     `yaml:"fail_burst" json:"fail_burst"`   // failed attempts per address prefix at once
	TokenRate  float64 `yaml:"token_rate" json:"token_rate"`   // enrollments per second per token, after the burst
	TokenBurst int     `yaml:"token_burst" json:"token_burst"` // enrollments per token at once
}

// DefaultEnrollLimits: a prefix may fail 60 times (a room of machines with
// a mistyped token), then once a second; a token enrolls up to 1,000
// machines at once, then 500 a second, above what one server signs on two
// cores (docs/BENCHMARKS.md, "Enrollment behind one address"), so 100,000
// machines behind one address take about 200 s at the token's rate.
var DefaultEnrollLimits = EnrollLimits{FailRate: 1, FailBurst: 60, TokenRate: 500, TokenBurst: 1000}

func (l EnrollLimits) withDefaults() EnrollLimits {
	d := DefaultEnrollLimits
	if l.FailRate > 0 {
		d.FailRate = l.FailRate
	}
	if l.FailBurst > 0 {
		d.FailBurst = l.FailBurst
	}
	if l.TokenRate > 0 {
		d.TokenRate = l.TokenRate
	}
	if l.TokenBurst > 0 {
		d.TokenBurst = l.TokenBurst
	}
	return d
}

func (l EnrollLimits) validate() error {
	if l.FailRate < 0 || l.FailBurst < 0 || l.TokenRate < 0 || l.TokenBurst < 0 {
		return fmt.Errorf("enrollment limits %+v: rates and bursts must be positive (0 takes the default)", l)
	}
	return nil
}

// enrollLimiters are the two tables of EnrollLimits.
type enrollLimiters struct {
	fail, token *ratelimit.Limiter
}

func newEnrollLimiters(l EnrollLimits) enrollLimiters {
	l = l.withDefaults()
	return enrollLimiters{
		fail:  ratelimit.New(rate.Limit(l.FailRate), l.FailBurst, limiterEntries),
		token: ratelimit.New(rate.Limit(l.TokenRate), l.TokenBurst, limiterEntries),
	}
}

// errTokenRate is the refusal of an enrollment over its token's rate: a
// valid token, so it does not count as a failure of the client.
var errTokenRate = errors.New("enrollment token over its rate")

// limitEnroll wraps the enrollment handler with the failure limit per
// client prefix; the handler itself takes from the token's bucket once the
// token is known to be valid (takeToken).
func (s *Server) limitEnroll(f apiFunc) apiFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		key, now := clientKey(r), time.Now()
		if blocked, wait := s.enrollLimit.fail.Blocked(key, now); blocked {
			s.metrics.enrollRefusals.WithLabelValues("client").Inc()
			return tooMany(w, wait, "failed enrollment attempts")
		}
		err := f(w, r)
		var he *httpError
		if errors.As(err, &he) && he.code >= 400 && he.code < 500 && !errors.Is(err, errTokenRate) {
			s.enrollLimit.fail.Allow(key, now)
		}
		return err
	}
}

// takeToken takes one enrollment from the bucket of token id, or answers
// 429 with how long to wait.
func (s *Server) takeToken(w http.ResponseWriter, id string) error {
	now := time.Now()
	if s.enrollLimit.token.Allow(id, now) {
		return nil
	}
	s.metrics.enrollRefusals.WithLabelValues("token").Inc()
	_, wait := s.enrollLimit.token.Blocked(id, now)
	secs := max(int(wait.Seconds()+0.999), 1)
	w.Header().Set("Retry-After", fmt.Sprint(secs))
	return &httpError{code: http.StatusTooManyRequests, msg: fmt.Sprintf("this enrollment token is enrolling machines faster than its limit; try again in %d s", secs), err: errTokenRate}
}
