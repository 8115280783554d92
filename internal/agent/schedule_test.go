package agent

import (
	"context"
	"errors"
	"math/rand/v2"
	"os/exec"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestScheduleNext(t *testing.T) {
	s := Schedule{Interval: 22 * time.Hour, MinBackoff: time.Minute}
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200; i++ {
		if d := s.next(0, rnd); d < 22*time.Hour || d > 22*time.Hour+132*time.Minute {
			t.Fatalf("after success: %v, want 22h plus up to 10%%", d)
		}
	}
	for failures, max := range map[int]time.Duration{1: time.Minute, 2: 2 * time.Minute, 5: 16 * time.Minute, 40: 22 * time.Hour} {
		for i := 0; i < 50; i++ {
			if d := s.next(failures, rnd); d < max/2 || d > max {
				t.Fatalf("after %d failures: %v, want between %v and %v", failures, d, max/2, max)
			}
		}
	}
}

func TestLoopBacksOffAndWakesOnNetworkChange(t *testing.T) {
	s := Schedule{Interval: time.Hour, MinBackoff: 20 * time.Millisecond, MaxBackoff: 40 * time.Millisecond, Settle: time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var calls atomic.Int32
	net := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		s.Loop(ctx, func(context.Context) error {
			n := calls.Add(1)
			if n <= 3 {
				return errors.New("server unreachable")
			}
			return nil
		}, net, nil)
		close(done)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for calls.Load() < 4 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if calls.Load() != 4 {
		t.Fatalf("after three failures the loop made %d calls, want 4 (retries with backoff)", calls.Load())
	}
	// Now succeeding, the next check-in is an hour away; a network change
	// brings it forward.
	time.Sleep(50 * time.Millisecond)
	if calls.Load() != 4 {
		t.Fatal("checked in again without waiting for the interval")
	}
	net <- struct{}{}
	for calls.Load() < 5 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if calls.Load() != 5 {
		t.Fatal("a network change did not trigger a check-in")
	}
	cancel()
	<-done
}

// TestWatchNetwork adds a link inside a network namespace of its own (never
// touching this machine's network) and expects a change notification.
func TestWatchNetwork(t *testing.T) {
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatal("ip (iproute2) is needed: apt-get install iproute2")
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // the thread is thrown away with its namespace
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		ch, err := WatchNetwork(ctx)
		if err != nil {
			errc <- err
			return
		}
		if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
			errc <- errors.New("ip link set lo up: " + string(out))
			return
		}
		select {
		case <-ch:
			errc <- nil
		case <-time.After(5 * time.Second):
			errc <- errors.New("no notification for a link change")
		}
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// Loop tells Scheduled the time of each next check-in, so agent status
// shows a real time rather than "never".
func TestLoopReportsNextCheckIn(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan time.Time, 4)
	s := Schedule{Interval: time.Hour, Jitter: time.Minute, Scheduled: func(next time.Time) { got <- next }}
	go s.Loop(ctx, func(context.Context) error { return nil }, nil, nil)
	select {
	case next := <-got:
		if d := time.Until(next); d < 58*time.Minute || d > 62*time.Minute {
			t.Fatalf("next check-in in %v, want about an hour", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Scheduled was not called")
	}
}
