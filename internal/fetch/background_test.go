package fetch

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// The controller is driven here by a scripted sequence of delay samples (a
// fake delay source: real queuing cannot be produced on demand on loopback).
// The real probes are exercised by the File tests below and by
// bench/fetch on a shaped link.
func TestController(t *testing.T) {
	const (
		target  = 50 * time.Millisecond
		minRate = 16 << 10
		ms      = time.Millisecond
	)
	type step struct {
		delay time.Duration
		link  float64 // bytes per second the link leaves the download; 0: no limit
		every time.Duration
		n     int // repeat count
	}
	// The download delivers its pacing rate, or what the link leaves it if
	// that is less.
	tests := []struct {
		name  string
		steps []step
		check func(t *testing.T, rates []float64)
	}{
		{
			name:  "idle link: the rate grows",
			steps: []step{{delay: 1 * ms, every: 200 * ms, n: 50}},
			check: func(t *testing.T, rates []float64) {
				for i := 1; i < len(rates); i++ {
					if rates[i] <= rates[i-1] {
						t.Fatalf("rate fell from %.0f to %.0f at sample %d on an idle link", rates[i-1], rates[i], i)
					}
				}
				if last := rates[len(rates)-1]; last < 10*startRate {
					t.Fatalf("rate %.0f after 10s idle, want it well above the start rate %d", last, startRate)
				}
			},
		},
		{
			name: "queue above target: the rate halves down to the floor, never below",
			steps: []step{
				{delay: 1 * ms, every: 200 * ms, n: 20},
				{delay: 300 * ms, every: 200 * ms, n: 40},
			},
			check: func(t *testing.T, rates []float64) {
				if rates[20] < rates[19] {
					t.Errorf("rate fell to %.0f on the first late sample; one late sample is noise", rates[20])
				}
				if rates[21] != rates[20]/2 {
					t.Errorf("rate %.0f after two late samples, want half of %.0f", rates[21], rates[20])
				}
				for i, r := range rates[21:] {
					if r < minRate {
						t.Fatalf("rate %.0f below the floor %d at sample %d", r, minRate, 21+i)
					}
				}
				if last := rates[len(rates)-1]; last != minRate {
					t.Errorf("rate %.0f after 8s of queuing, want the floor %d", last, minRate)
				}
			},
		},
		{
			name: "one late answer among prompt ones is noise",
			steps: []step{
				{delay: 1 * ms, every: 200 * ms, n: 5},
				{delay: 500 * ms, every: 200 * ms, n: 1},
				{delay: 1 * ms, every: 200 * ms, n: 1},
				{delay: 500 * ms, every: 200 * ms, n: 1},
				{delay: 1 * ms, every: 200 * ms, n: 1},
			},
			check: func(t *testing.T, rates []float64) {
				for i := 1; i < len(rates); i++ {
					if rates[i] < rates[i-1] {
						t.Fatalf("rate fell from %.0f to %.0f at sample %d", rates[i-1], rates[i], i)
					}
				}
			},
		},
		{
			name:  "queue exactly at target: the rate holds",
			steps: []step{{delay: 1 * ms, every: 200 * ms, n: 3}, {delay: 1*ms + target, every: 200 * ms, n: 5}},
			check: func(t *testing.T, rates []float64) {
				if rates[7] != rates[4] {
					t.Fatalf("rate moved from %.0f to %.0f with the queue at target", rates[4], rates[7])
				}
			},
		},
		{
			name:  "the rate never passes twice what was delivered",
			steps: []step{{delay: 1 * ms, link: 1 << 20, every: 200 * ms, n: 100}},
			check: func(t *testing.T, rates []float64) {
				if last := rates[len(rates)-1]; last != 2<<20 {
					t.Fatalf("rate %.0f with 1 MiB/s delivered, want the ceiling %d", last, 2<<20)
				}
			},
		},
		{
			name:  "alone on the link: network-limited at its peak, the rate does not fall",
			steps: []step{{delay: 1 * ms, link: 2 << 20, every: 200 * ms, n: 100}},
			check: func(t *testing.T, rates []float64) { neverFalls(t, rates, 1, "with the link to itself") },
		},
		{
			// A competitor that keeps queues short (BBR) shows no delay, only
			// less delivery.
			name: "a competitor takes most of the link without adding delay: the rate falls",
			steps: []step{
				{delay: 1 * ms, link: 2 << 20, every: 200 * ms, n: 40},
				{delay: 3 * ms, link: 400 << 10, every: 200 * ms, n: 60},
			},
			check: func(t *testing.T, rates []float64) {
				if rates[39] < 2<<20 {
					t.Fatalf("rate %.0f before the competitor, want at least the link's %d", rates[39], 2<<20)
				}
				var low float64 = rates[40]
				for _, r := range rates[40:] {
					low = min(low, r)
				}
				if low > 400<<10 {
					t.Fatalf("lowest rate %.0f while the competitor left 400 KiB/s, want below that", low)
				}
			},
		},
		{
			name: "after a decrease the rate grows back additively, then doubles once the link stays empty",
			steps: []step{
				{delay: 1 * ms, link: 4 << 20, every: 200 * ms, n: 40},
				{delay: 300 * ms, link: 4 << 20, every: 200 * ms, n: 20},
				{delay: 1 * ms, link: 4 << 20, every: 200 * ms, n: 40},
			},
			check: func(t *testing.T, rates []float64) {
				// With the queue drained (delay back at base), every sample
				// adds the same step, 1/avoidSteps of the 4 MiB/s peak,
				// until the link has been empty for emptySamples samples.
				if rates[59] != minRate {
					t.Fatalf("rate %.0f after 4s of queuing, want the floor %d", rates[59], minRate)
				}
				for i := 61; i < 59+emptySamples; i++ {
					if d := rates[i] - rates[i-1]; d != (4<<20)/avoidSteps {
						t.Fatalf("sample %d grew the rate by %.0f, want the additive step %d", i, d, (4<<20)/avoidSteps)
					}
				}
				// Then the link is known to be empty again: slow start.
				if i := 59 + emptySamples; rates[i] != 2*rates[i-1] {
					t.Fatalf("sample %d: rate %.0f after %.0f and %d samples of an empty link, want it doubled", i, rates[i], rates[i-1], emptySamples)
				}
			},
		},
		{
			// Alone on a 2 MiB/s link and reading as fast as data arrives,
			// the download's own receive window (ownWindow) queues
			// ownWindow/2 MiB/s = 31 ms at the bottleneck, above the 50 ms
			// target's fifth but not a competitor: the rate must not fall.
			name: "alone and network-limited, its own window's queue is not congestion",
			steps: []step{
				{delay: 1 * ms, link: 2 << 20, every: 200 * ms, n: 20},
				{delay: 1*ms + time.Duration(ownWindow/(2<<20)*float64(time.Second)) + target/2, link: 2 << 20, every: 200 * ms, n: 60},
			},
			check: func(t *testing.T, rates []float64) {
				neverFalls(t, rates, 20, "the download's own queue taken for a competitor's")
			},
		},
		{
			// The same queue while the download reads slower than the link
			// (pacing-limited, so its window is mostly closed) is someone
			// else's: a receive-window-limited or BBR transfer that keeps
			// a standing queue above target.
			name: "pacing-limited under a standing queue above target: the rate falls to the floor",
			steps: []step{
				{delay: 1 * ms, link: 2 << 20, every: 200 * ms, n: 40},
				{delay: 1*ms + target + 10*ms, link: 8 << 20, every: 200 * ms, n: 20},
			},
			check: func(t *testing.T, rates []float64) {
				if last := rates[len(rates)-1]; last != minRate {
					t.Fatalf("rate %.0f after 4s of a competitor's standing queue, want the floor %d", last, minRate)
				}
			},
		},
		{
			// BBR's standing queue while the download is small: a few
			// milliseconds, under the target. The rate must stop growing
			// there rather than creep up into the competitor's share.
			name: "a standing queue between half the target and the target: the rate holds",
			steps: []step{
				{delay: 1 * ms, link: 2 << 20, every: 200 * ms, n: 40},
				{delay: 300 * ms, link: 2 << 20, every: 200 * ms, n: 20},
				{delay: 1*ms + target*3/4, link: 2 << 20, every: 200 * ms, n: 50},
			},
			check: func(t *testing.T, rates []float64) {
				for i := 61; i < len(rates); i++ {
					if rates[i] != rates[60] {
						t.Fatalf("rate moved from %.0f to %.0f at sample %d under a standing queue of 3/4 of the target", rates[60], rates[i], i)
					}
				}
			},
		},
		{
			name: "a new route with a longer base delay is learnt within ten minutes",
			steps: []step{
				{delay: 1 * ms, every: 200 * ms, n: 5},
				{delay: 200 * ms, every: 30 * time.Second, n: 25},
			},
			check: func(t *testing.T, rates []float64) {
				if last, prev := rates[len(rates)-1], rates[len(rates)-2]; last <= prev {
					t.Fatalf("rate %.0f then %.0f after 12 minutes on the new route, want it growing again", prev, last)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newController(target, minRate)
			now := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
			var rates []float64
			for _, s := range tt.steps {
				for range s.n {
					now = now.Add(s.every)
					delivered := c.rate
					if s.link > 0 {
						delivered = min(delivered, s.link)
					}
					rates = append(rates, c.sample(now, s.delay, delivered))
				}
			}
			tt.check(t, rates)
		})
	}
}

// neverFalls fails t if a rate from index from on is below the one before.
func neverFalls(t testing.TB, rates []float64, from int, why string) {
	t.Helper()
	for i := max(from, 1); i < len(rates); i++ {
		if rates[i] < rates[i-1] {
			t.Fatalf("rate fell from %.0f to %.0f at sample %d: %s", rates[i-1], rates[i], i, why)
		}
	}
}

// pacingLog passes the rate of each "background pacing" log record to rates.
type pacingLog struct{ rates chan<- int64 }

func (h pacingLog) Enabled(context.Context, slog.Level) bool { return true }
func (h pacingLog) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h pacingLog) WithGroup(string) slog.Handler            { return h }
func (h pacingLog) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "background pacing" {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "rate" {
			select {
			case h.rates <- a.Value.Int64():
			default:
			}
		}
		return true
	})
	return nil
}

// A background download over real HTTP on loopback completes and verifies,
// probing the source with HEAD requests on the side.
func TestFileBackground(t *testing.T) {
	good := payload(t, 1<<20, 20)
	var heads, gets atomic.Int32
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			heads.Add(1)
		} else {
			gets.Add(1)
		}
		http.ServeContent(w, r, "p", time.Time{}, bytes.NewReader(good))
	})
	// The limiter makes the download last about a second, long enough for
	// probes every 10ms.
	c := newTestClient(t, Options{Limiter: rate.NewLimiter(1<<20, 32<<10)})
	dst := filepath.Join(t.TempDir(), "p")
	err := c.File(t.Context(), srv.URL+"/p", dst, wantOf(good), FileOptions{
		Mode:       Background,
		Background: BackgroundOptions{ProbeEvery: 10 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	assertFile(t, dst, good)
	if heads.Load() == 0 {
		t.Errorf("no HEAD probes during a background download of about a second")
	}
	if n := gets.Load(); n != 1 {
		t.Errorf("%d GET requests, want 1", n)
	}

	// A wrong payload is still refused in background mode.
	dst2 := filepath.Join(t.TempDir(), "p")
	err = c.File(t.Context(), srv.URL+"/p", dst2, wantOf(payload(t, 1<<20, 21)), FileOptions{Mode: Background})
	if !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("err = %v, want ErrHashMismatch", err)
	}
	assertNoFile(t, dst2)
}

// When the probes' answers slow down (a queue builds up on the link; here
// the server delays its HEAD answers, a stand-in for a queue we cannot build
// on loopback), the pacing rate falls to the floor and stays there: it
// yields, and does not stop.
func TestFileBackgroundYields(t *testing.T) {
	good := payload(t, 8<<20, 22)
	var heads atomic.Int32
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead && heads.Add(1) > 3 {
			time.Sleep(200 * time.Millisecond)
		}
		// The body trickles at about 1 MiB/s, so the download outlasts the
		// pacer's fall to its floor even though it starts fast on an idle
		// link (at loopback speed 8 MiB would be done in a tenth of a second).
		http.ServeContent(trickle{w}, r, "p", time.Time{}, bytes.NewReader(good))
	})
	rates := make(chan int64, 1000)
	c := newTestClient(t, Options{Logger: slog.New(pacingLog{rates})})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	const floor = 32 << 10
	errc := make(chan error, 1)
	go func() {
		errc <- c.File(ctx, srv.URL+"/p", filepath.Join(t.TempDir(), "p"), wantOf(good), FileOptions{
			Mode:       Background,
			Background: BackgroundOptions{ProbeEvery: 10 * time.Millisecond, MinRate: floor},
		})
	}()
	atFloor := 0
	for atFloor < 3 {
		select {
		case r := <-rates:
			if r < floor {
				t.Fatalf("pacing rate %d below the floor %d", r, floor)
			}
			if r == floor {
				atFloor++
			}
		case err := <-errc:
			t.Fatalf("download ended (%v) before its rate fell to the floor", err)
		case <-ctx.Done():
			t.Fatal("rate never fell to the floor while probes were slow")
		}
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestBackgroundHTTPClient(t *testing.T) {
	hc := defaultHTTPClient()
	bg := backgroundHTTPClient(hc)
	if bg == hc || bg.Transport == hc.Transport {
		t.Fatal("background client shares the foreground transport")
	}
	if hc.Transport.(*http.Transport).DialContext == nil {
		t.Fatal("foreground transport lost its dialer")
	}
	// A transport that is not an *http.Transport is used as it is.
	other := &http.Client{Transport: roundTripperFunc(func(*http.Request) (*http.Response, error) { return nil, errors.New("x") })}
	if backgroundHTTPClient(other) != other {
		t.Fatal("custom RoundTripper replaced")
	}
}

// trickle is a ResponseWriter that pauses 30 ms after each write.
type trickle struct{ http.ResponseWriter }

func (t trickle) Write(p []byte) (int, error) {
	n, err := t.ResponseWriter.Write(p)
	time.Sleep(30 * time.Millisecond)
	return n, err
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A download that has measured the idle link's delay starts fast, not at
// startRate: on an idle link background mode is about as fast as the
// foreground from the first second (bench/fetch measures it).
func TestControllerStartsFastOnIdleLink(t *testing.T) {
	c := newController(25*time.Millisecond, 16<<10)
	if c.rate != startRate {
		t.Fatalf("rate before the idle delay is known = %.0f, want %d", c.rate, startRate)
	}
	now := time.Now()
	c.idle(now, time.Millisecond)
	if c.rate != fastRate {
		t.Fatalf("rate after the idle delay = %.0f, want %d", c.rate, fastRate)
	}
	// The link turns out to hold only 1 MB/s and its queue grows: the
	// rate comes down within a second.
	for i := 1; i <= 5; i++ {
		c.sample(now.Add(time.Duration(i)*200*time.Millisecond), 200*time.Millisecond, 1<<20)
	}
	if c.rate > 4<<20 {
		t.Fatalf("rate %.0f after a second of a full queue on a 1 MB/s link", c.rate)
	}
}

// One Pacer across the downloads of a cycle: the second starts at the rate
// the first ended with, not from scratch, and measures the idle delay only
// once.
func TestPacerSharedAcrossDownloads(t *testing.T) {
	good := payload(t, 256<<10, 22)
	var heads atomic.Int32
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			heads.Add(1)
			time.Sleep(50 * time.Millisecond) // a slow answer; the limiter holds delivery to 512 KiB/s
		}
		http.ServeContent(w, r, "p", time.Time{}, bytes.NewReader(good))
	})
	c := newTestClient(t, Options{Limiter: rate.NewLimiter(512<<10, 32<<10)})
	p := NewPacer()
	opts := FileOptions{Mode: Background, Pacer: p, Background: BackgroundOptions{ProbeEvery: 10 * time.Millisecond}}
	if err := c.File(t.Context(), srv.URL+"/p", filepath.Join(t.TempDir(), "a"), wantOf(good), opts); err != nil {
		t.Fatal(err)
	}
	after := p.lim.Limit()
	first := heads.Load()
	if after >= rate.Limit(fastRate) {
		t.Fatalf("rate after a download whose probes showed a queue = %.0f, want below %d", after, fastRate)
	}
	p.mu.Lock()
	base := p.ctl.baseDelay()
	p.mu.Unlock()
	if err := c.File(t.Context(), srv.URL+"/p", filepath.Join(t.TempDir(), "b"), wantOf(good), opts); err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ctl.baseDelay() > base {
		t.Fatalf("base delay rose from %v to %v: the second download measured it again", base, p.ctl.baseDelay())
	}
	if heads.Load() < first+1 {
		t.Fatalf("the second download sent no probes")
	}
}

// At a fast pacing rate, reads of one copy buffer go through without a
// timer for a twentieth of a second of the rate: the burst grows with the
// rate. Before it did, every 32 KiB read of a fast download waited for a
// sub-millisecond timer, which held a loopback download to half its pacing
// rate and the controller's ceiling of twice the delivery kept it there
// (13% of the foreground 1–2 s after the start). How fast background mode
// is on an idle link against the foreground is measured, not asserted:
// bench/fetch/run.sh (docs/BENCHMARKS.md "Downloads"); a test of that ratio
// here failed under load (a load of 10 gave 35%, 49%, 44% and 20% before a
// pair passed).
func TestPacerFastReadsWaitForNoTimer(t *testing.T) {
	for _, r := range []float64{startRate, fastRate, 100e6} {
		p := NewPacer()
		p.setRate(r)
		if b := p.lim.Burst(); b < copyBuf {
			t.Fatalf("rate %.0f B/s: burst %d, want at least one buffer (%d)", r, b, copyBuf)
		}
		at := time.Now().Add(time.Second) // a full bucket: the burst is at most a second of the rate
		reads := max(1, int(r/paceChunk)/copyBuf)
		for i := range reads {
			if d := p.lim.ReserveN(at, copyBuf).DelayFrom(at); d > 0 {
				t.Fatalf("rate %.0f B/s: read %d of %d of one buffer waits %v for a timer; want none within 1/%d s of the rate (burst %d)", r, i+1, reads, d, paceChunk, p.lim.Burst())
			}
		}
	}
}
