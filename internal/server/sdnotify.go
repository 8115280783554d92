package server

import (
	"fmt"
	"net"
)

// SdNotify sends state (such as "READY=1" or "STOPPING=1") to systemd's
// notification socket, the value of NOTIFY_SOCKET; an empty socket does
// nothing. Abstract sockets start with '@'.
func SdNotify(socket, state string) error {
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
