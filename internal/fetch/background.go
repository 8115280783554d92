package fetch

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Mode says how a File download shares the network with other traffic.
type Mode int

const (
	// Foreground downloads as fast as the source and Options.Limiter allow:
	// a person asked to install now.
	Foreground Mode = iota
	// Background also yields to other traffic on the link: it paces its
	// reads with a delay-based controller (see BackgroundOptions) so that it
	// uses only bandwidth nobody else wants, the way BITS does.
	Background
)

func (m Mode) String() string {
	switch m {
	case Foreground:
		return "foreground"
	case Background:
		return "background"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// BackgroundOptions tune Background mode; zero values mean the defaults.
//
// How it works, after LEDBAT (RFC 6817) but on the receiving side and
// without server cooperation: every ProbeEvery the client sends a HEAD
// request for the URL on a second connection and takes the time to the
// answer's headers as a delay sample (any status counts: only the round trip
// matters). The answer waits in the same queues as the download's data, so
// its delay grows when anyone fills the link. The base delay is the minimum
// sample of the last ten minutes (kept in one-minute buckets, so a route
// change is forgotten); the current delay is the minimum of the last two
// samples (one late answer is noise). Queuing delay = current - base.
//
// Delay alone misses a competitor that keeps queues short (a BBR sender adds
// only milliseconds), so a second signal counts as congestion too: for two
// samples in a row the download got less than 80% of its pacing rate (the
// network, not the pacing, held it back) and less than 80% of the most it
// delivered in the last ten minutes (so it is not simply using the whole
// link). Then the rate falls to half of what was delivered.
//
// Above Target the pacing rate halves (never below MinRate); between
// Target/2 and Target it holds. Below Target/2 it grows, scaled by how far
// below Target/2 the queue is: doubling each
// sample until the first decrease (a slow start that finds the link's
// capacity in seconds), then additively by 1/128 of the peak delivery a
// sample (at least MinRate) until the queue has stayed below Target/5 for
// ten samples (the link is empty again: slow start), and never past twice
// what was actually delivered in the last interval (so an idle period
// cannot build up a rate that takes many halvings to matter). The download
// reads from its socket no faster than this rate (in bursts of at most
// 1/20 s of it, so that a fast download does not wait for a timer after
// every buffer), so TCP's receive window closes and the sender slows down.
// The connection's receive buffer is fixed at 64 KiB (when the Client's
// transport is an *http.Transport), so that the sender feels the pacing
// quickly and the download itself never queues more than about that much
// at the bottleneck; it also caps a background download at about 64 KiB a
// round trip (some 10 Mbit/s at 50 ms), which is the price of yielding. The
// pacing composes with Options.Limiter: a byte needs a token from both.
//
// The queue a download counts is not its own: while it is network-limited
// (it reads data as fast as it arrives), its own receive window waits at
// the bottleneck, about 64 KiB divided by its peak delivery, and that much
// is subtracted from the queuing delay. While it is pacing-limited its
// window is mostly closed, so a standing queue is someone else's.
//
// The default Target, 10 ms, is below RFC 6817's 100 ms because a receiver
// cannot see its own sender's queue apart from anyone else's, and because
// competitors that keep queues short (BBR, or a transfer limited by its own
// receive window) keep only 8–20 ms of queue, under which a higher target
// lets the download hold a large share of the link; docs/BENCHMARKS.md has
// the measurements behind the choice.
//
// Background mode has no effect on file:// URLs.
type BackgroundOptions struct {
	// Target is the queuing delay the download tries to stay under.
	// 0 means 10ms; at most 100ms (RFC 6817's ceiling).
	Target time.Duration
	// ProbeEvery is the interval between delay probes. 0 means 200ms;
	// at least 10ms.
	ProbeEvery time.Duration
	// MinRate is the pacing floor in bytes per second: a download never
	// stops entirely, and a source that answers probes slowly can hold it
	// down to MinRate but no lower. 0 means the larger of 16 KiB/s and twice
	// Limits.MinSpeed; it must not be below Limits.MinSpeed, because the
	// pacing waits count against the speed watchdog (so that probes cannot
	// be used to slow a download below it).
	MinRate int64
}

const (
	defaultTarget     = 10 * time.Millisecond
	maxTarget         = 100 * time.Millisecond
	defaultProbeEvery = 200 * time.Millisecond
	minProbeEvery     = 10 * time.Millisecond
	defaultMinRate    = 16 << 10
	// startRate is the pacing rate before the link's idle delay is known.
	startRate = 256 << 10
	// fastRate is the pacing rate once the idle delay of the link is known:
	// fast enough for any link (slow start and the delay samples bring it
	// down within a few samples when the link is slower or busy).
	fastRate = 64 << 20
	// probeTimeout bounds one probe; a probe that fails or times out counts
	// as a sample of this delay (the link is too busy to answer).
	probeTimeout = 2 * time.Second
	// bgReadBuffer is the socket receive buffer of background connections
	// (the kernel doubles it for its bookkeeping).
	bgReadBuffer = 64 << 10
	// ownWindow is about how much of its own data a network-limited
	// background download has queued at the bottleneck: the receive window
	// that bgReadBuffer allows.
	ownWindow = float64(bgReadBuffer)
	// paceChunk is the largest read in background mode as a fraction of a
	// second at the current rate, so that a rate change takes effect soon.
	paceChunk = 20 // 1/20 s
	minChunk  = 4 << 10
)

func (bo BackgroundOptions) withDefaults(lim Limits) (BackgroundOptions, error) {
	switch {
	case bo.Target < 0 || bo.Target > maxTarget:
		return bo, &InputError{"Background.Target", bo.Target.String(), "0 (default 10ms) or a duration up to 100ms"}
	case bo.ProbeEvery != 0 && bo.ProbeEvery < minProbeEvery:
		return bo, &InputError{"Background.ProbeEvery", bo.ProbeEvery.String(), "0 (default 200ms) or at least 10ms"}
	case bo.MinRate < 0 || (bo.MinRate != 0 && bo.MinRate < lim.MinSpeed):
		return bo, &InputError{"Background.MinRate", fmt.Sprint(bo.MinRate),
			fmt.Sprintf("0 (default) or at least Limits.MinSpeed (%d bytes per second)", lim.MinSpeed)}
	}
	if bo.Target == 0 {
		bo.Target = defaultTarget
	}
	if bo.ProbeEvery == 0 {
		bo.ProbeEvery = defaultProbeEvery
	}
	if bo.MinRate == 0 {
		bo.MinRate = max(defaultMinRate, 2*lim.MinSpeed)
	}
	return bo, nil
}

// controller is the delay-based rate controller of Background mode: it
// turns delay samples into a pacing rate in bytes per second. It is pure
// arithmetic over its inputs (no clock, no I/O) so that tests can drive it.
type controller struct {
	target    time.Duration
	minRate   float64
	rate      float64
	base      []baseBucket // oldest first, at most baseBuckets
	recent    [currentFilter]time.Duration
	nrecent   int
	delivered float64 // the previous interval's delivery, for smoothing
	shared    int     // consecutive samples that looked like a shared link
	empty     int     // consecutive samples with the queue nearly empty
	avoid     bool    // a decrease happened: grow additively until the link empties
}

// baseBucket holds one minute of history: the least delay and the most
// delivery seen in it.
type baseBucket struct {
	start time.Time
	min   time.Duration
	peak  float64
}

const (
	baseBuckets   = 10
	baseBucketFor = time.Minute
	currentFilter = 2
	// netLimited: delivering less than this fraction of the pacing rate
	// means the network, not the pacing, limits the download; delivering
	// less than this fraction of the peak as well means the link is shared.
	netLimited = 0.8
	// avoidSteps: after a decrease the rate grows additively, by the peak
	// delivery over this many samples (25.6 s at the default 200ms), so that
	// a competitor that keeps its own queue short (BBR, or a receive-window
	// limited transfer) keeps most of the link for the seconds it needs it.
	avoidSteps = 128
	// emptySamples: this many samples in a row with the queue below
	// target/emptyFraction end congestion avoidance: the link is empty
	// again, and the rate doubles per sample as at the start.
	emptySamples  = 10
	emptyFraction = 5
)

func newController(target time.Duration, minRate float64) *controller {
	return &controller{target: target, minRate: minRate, rate: max(startRate, minRate)}
}

// idle takes a delay measured on the link before the download's first byte:
// the base delay, from which queuing is judged; the download may then start
// fast.
func (c *controller) idle(now time.Time, delay time.Duration) {
	c.base = append(c.base[:0], baseBucket{start: now, min: delay})
	c.recent[0], c.nrecent = delay, 1
	c.rate = max(c.rate, fastRate)
}

// sample takes one delay measurement made at now, and the bytes per second
// the download delivered since the previous sample; it returns the new rate.
func (c *controller) sample(now time.Time, delay time.Duration, delivered float64) float64 {
	// Delivery is smoothed over two intervals: a read that catches up after
	// a pause must not look like capacity.
	smooth := delivered
	if c.nrecent > 0 {
		smooth = (delivered + c.delivered) / 2
	}
	c.delivered = delivered
	if n := len(c.base); n == 0 || now.Sub(c.base[n-1].start) >= baseBucketFor {
		if n == baseBuckets {
			c.base = append(c.base[:0], c.base[1:]...)
		}
		c.base = append(c.base, baseBucket{start: now, min: delay, peak: smooth})
	} else {
		c.base[n-1].min = min(c.base[n-1].min, delay)
		c.base[n-1].peak = max(c.base[n-1].peak, smooth)
	}
	copy(c.recent[1:], c.recent[:currentFilter-1])
	c.recent[0] = delay
	c.nrecent = min(c.nrecent+1, currentFilter)

	// A link shared with a sender that keeps queues short (BBR) shows
	// little delay; it shows as the network, not the pacing, holding the
	// download well below what it got alone.
	if delivered < netLimited*c.rate && smooth < netLimited*c.peak() {
		c.shared++
	} else {
		c.shared = 0
	}
	if c.shared >= currentFilter {
		c.shared, c.empty, c.avoid = 0, 0, true
		c.rate = max(c.minRate, min(c.rate/2, smooth/2))
		return c.rate
	}
	q := c.current() - c.baseDelay()
	if delivered < netLimited*c.rate && c.peak() > 0 {
		// Network-limited, the download's own receive window sits in the
		// bottleneck's queue: about ownWindow bytes draining at the link's
		// rate, which the peak delivery approximates. That part of the
		// queue is the download's own, not a competitor's: alone on a
		// 20 Mbit/s link a 64 KiB window queues 26 ms by itself.
		q -= min(q, time.Duration(ownWindow/c.peak()*float64(time.Second)))
	}
	if q > c.target {
		c.empty, c.avoid = 0, true
		c.rate = max(c.minRate, c.rate/2)
		return c.rate
	}
	if q < c.target/emptyFraction {
		c.empty++
	} else {
		c.empty = 0
	}
	if c.empty >= emptySamples {
		c.avoid = false
	}
	// Growth aims at half the target: between Target/2 and Target the rate
	// holds, so a competitor's standing queue of a few milliseconds (BBR's,
	// while the download is small) stops the growth instead of slowing it.
	if grow := c.target / 2; q < grow {
		off := float64(grow-q) / float64(grow)
		step := c.rate // slow start: double while the queue stays empty
		if c.avoid {
			step = c.peak() / avoidSteps
		}
		c.rate += max(c.minRate, step) * off
	}
	c.rate = max(c.minRate, min(c.rate, max(startRate, 2*delivered)))
	return c.rate
}

// queuing is the queuing delay the controller last saw.
func (c *controller) queuing() time.Duration { return c.current() - c.baseDelay() }

func (c *controller) current() time.Duration {
	cur := c.recent[0]
	for _, d := range c.recent[1:c.nrecent] {
		cur = min(cur, d)
	}
	return cur
}

// peak is the most the download delivered in an interval of the last ten
// minutes (smoothed over two intervals).
func (c *controller) peak() float64 {
	var p float64
	for _, bk := range c.base {
		p = max(p, bk.peak)
	}
	return p
}

func (c *controller) baseDelay() time.Duration {
	if len(c.base) == 0 {
		return 0
	}
	b := c.base[0].min
	for _, bk := range c.base[1:] {
		b = min(b, bk.min)
	}
	return b
}

// Pacer is the pacing of Background downloads: one controller and one
// rate shared by the downloads given it (FileOptions.Pacer), so that the
// payloads of one cycle share what the first learned (the link's base delay,
// its capacity, whether anyone else wants it) instead of each starting from
// nothing; without one, each download has its own. Its rate follows the
// controller, fed by delay probes while a download runs. It is safe for
// concurrent downloads.
type Pacer struct {
	lim  *rate.Limiter
	read atomic.Int64 // bytes delivered, for the controller's ceiling

	mu   sync.Mutex
	bo   BackgroundOptions // set by the first download
	ctl  *controller
	last time.Time // the controller's previous sample
	seen int64     // read at the previous sample
}

// NewPacer returns a Pacer for the Background downloads of one cycle.
func NewPacer() *Pacer {
	return &Pacer{lim: rate.NewLimiter(rate.Limit(startRate), copyBuf)}
}

// chunk is the largest read to take at the current rate.
func (p *Pacer) chunk() int {
	return max(minChunk, int(float64(p.lim.Limit())/paceChunk))
}

// setRate sets the pacing rate, and a burst of 1/paceChunk s at that rate
// (at least one copy buffer): with a burst of one buffer, every read of a
// fast download waited for a timer a fraction of a millisecond long, and
// the timers' overhead held a download paced at 100 MB/s to half of that
// (and the controller's ceiling of twice the delivery then kept it there).
func (p *Pacer) setRate(r float64) {
	p.lim.SetBurst(max(copyBuf, int(r/paceChunk)))
	p.lim.SetLimit(rate.Limit(r))
}

// startPacer starts probing src for delay on behalf of p (a fresh Pacer
// when p is nil) and returns it with a stop function that ends the probes
// and waits for them. The first download of a Pacer measures the link's
// delay before its first byte (after a probe that warms the connection), so
// that the base delay is the idle link's and the download can start fast.
func (c *Client) startPacer(ctx context.Context, src *source, bo BackgroundOptions, p *Pacer) (*Pacer, func()) {
	if p == nil {
		p = NewPacer()
	}
	p.mu.Lock()
	fresh := p.ctl == nil
	if fresh {
		p.bo = bo
		p.ctl = newController(bo.Target, float64(bo.MinRate))
	}
	p.mu.Unlock()
	c.probe(ctx, src) // the first probe of a connection pays for its handshake
	if fresh {
		d := c.probe(ctx, src)
		p.mu.Lock()
		p.ctl.idle(c.now(), d)
		p.mu.Unlock()
	}
	p.mu.Lock()
	every := p.bo.ProbeEvery
	p.last, p.seen = c.now(), p.read.Load()
	p.setRate(p.ctl.rate)
	p.mu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			delay := c.probe(ctx, src)
			if ctx.Err() != nil {
				return
			}
			p.mu.Lock()
			now, n := c.now(), p.read.Load()
			delivered := 0.0
			if el := now.Sub(p.last).Seconds(); el > 0 {
				delivered = float64(n-p.seen) / el
			}
			p.last, p.seen = now, n
			r := p.ctl.sample(now, delay, delivered)
			q := p.ctl.queuing()
			p.mu.Unlock()
			p.setRate(r)
			c.log.Debug("background pacing", "url", src.name, "delay", delay, "queuing", q, "delivered", int64(delivered), "rate", int64(r))
		}
	}()
	return p, func() {
		cancel()
		<-done
	}
}

// probe measures the time to the headers of a HEAD request for src; a
// failure counts as probeTimeout.
func (c *Client) probe(ctx context.Context, src *source) time.Duration {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, src.u.String(), nil)
	if err != nil {
		return probeTimeout
	}
	if c.ua != "" {
		req.Header.Set("User-Agent", c.ua)
	}
	start := c.now()
	resp, err := c.bghc.Do(req)
	if err != nil {
		return probeTimeout
	}
	d := c.now().Sub(start)
	resp.Body.Close()
	return d
}

// backgroundHTTPClient returns a copy of hc whose connections have a small
// fixed receive buffer, so that a paced reader slows the sender within a
// fraction of a second instead of after megabytes of autotuned buffer. A
// client whose transport is not an *http.Transport, or dials by itself, is
// returned as it is.
func backgroundHTTPClient(hc *http.Client) *http.Client {
	rt := hc.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	t, ok := rt.(*http.Transport)
	//lint:ignore SA1019 a transport set up with the deprecated dial hooks is left as it is, not rewired
	if !ok || t.DialTLSContext != nil || t.DialTLS != nil || (t.DialContext == nil && t.Dial != nil) {
		return hc
	}
	t = t.Clone()
	dial := t.DialContext
	if dial == nil {
		dial = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if tc, ok := conn.(*net.TCPConn); ok && err == nil {
			// Best effort: a kernel that refuses still downloads, only with
			// a slower reaction to other traffic.
			_ = tc.SetReadBuffer(bgReadBuffer)
		}
		return conn, err
	}
	bg := *hc
	bg.Transport = t
	return &bg
}
