package agent

import (
	"context"
	"fmt"

	"golang.org/x/sys/unix"
)

// WatchNetwork reports changes of links, addresses and routes (the network
// coming back, a new address from DHCP, a VPN coming up) on the returned
// channel, coalesced: at most one change waits to be read. It listens to the
// kernel's rtnetlink multicast groups in the network namespace of the
// calling thread, and stops when ctx ends.
func WatchNetwork(ctx context.Context) (<-chan struct{}, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("watch network: %w", err)
	}
	groups := uint32(unix.RTMGRP_LINK | unix.RTMGRP_IPV4_IFADDR | unix.RTMGRP_IPV6_IFADDR | unix.RTMGRP_IPV4_ROUTE | unix.RTMGRP_IPV6_ROUTE)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: groups}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("watch network: %w", err)
	}
	// A receive timeout lets the reader notice ctx ending.
	tv := unix.Timeval{Usec: 250_000}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("watch network: %w", err)
	}
	ch := make(chan struct{}, 1)
	go func() {
		defer unix.Close(fd)
		defer close(ch)
		buf := make([]byte, 64<<10)
		for {
			n, _, err := unix.Recvfrom(fd, buf, 0)
			if ctx.Err() != nil {
				return
			}
			switch err {
			case nil:
			case unix.EAGAIN, unix.EINTR:
				continue
			case unix.ENOBUFS:
				// The kernel dropped messages: something changed.
			default:
				return
			}
			if n == 0 && err == nil {
				return
			}
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}()
	return ch, nil
}
