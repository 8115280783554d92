// Package sdnotify tells systemd how a service is doing (sd_notify(3)):
// ready, reloading, stopping, and watchdog keep-alives. With no notification
// socket (not started by systemd with Type=notify) every call does nothing;
// it never fails a service that systemd did not start.
package sdnotify

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"time"
)

// Notify sends state (such as "READY=1" or "STOPPING=1") to systemd's
// notification socket, the value of NOTIFY_SOCKET; an empty socket does
// nothing. Abstract sockets start with '@'.
func Notify(socket, state string) error {
	if socket == "" {
		return nil
	}
	if socket[0] != '@' && socket[0] != '/' {
		return fmt.Errorf("NOTIFY_SOCKET %q: want an absolute path or an abstract socket starting with @", socket)
	}
	addr := &net.UnixAddr{Name: socket, Net: "unixgram"}
	if socket[0] == '@' {
		addr.Name = "\x00" + socket[1:]
	}
	c, err := net.DialUnix("unixgram", nil, addr)
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	return nil
}

// WatchdogInterval returns how often to send WATCHDOG=1 for the values of
// WATCHDOG_USEC and WATCHDOG_PID: half the watchdog timeout, as sd_watchdog_enabled(3)
// recommends, or 0 when no watchdog applies to the process pid.
func WatchdogInterval(usec, watchdogPID string, pid int) (time.Duration, error) {
	if usec == "" {
		return 0, nil
	}
	if watchdogPID != "" && watchdogPID != strconv.Itoa(pid) {
		return 0, nil // meant for another process (our parent)
	}
	n, err := strconv.ParseUint(usec, 10, 63)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("WATCHDOG_USEC %q: want a positive number of microseconds", usec)
	}
	return time.Duration(n) * time.Microsecond / 2, nil
}

// KeepAlive sends WATCHDOG=1 to socket every interval until ctx ends. alive
// is asked before each keep-alive; a false answer withholds it, so systemd
// restarts a service whose main loop is stuck. A zero interval does nothing.
func KeepAlive(ctx context.Context, socket string, interval time.Duration, alive func() bool) {
	if interval <= 0 || socket == "" {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if alive == nil || alive() {
				_ = Notify(socket, "WATCHDOG=1")
			}
		}
	}
}
