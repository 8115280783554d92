package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bulwarkhq/bulwark/internal/wire"
)

// agentConn is one agent's HTTP/1.1 connection, spoken directly over
// crypto/tls: the same request lines and headers the agent's net/http
// client sends (Host, User-Agent, Bulwark-Machine-Id, If-None-Match,
// Content-Type, Content-Length, Accept-Encoding), each request in one write,
// each answer read by net/http's own response parser. It leaves out what
// net/http's Transport adds around a connection on the client side (a
// dialer that races addresses, two goroutines per connection, a connection
// pool per client): without it the load generator used 0.64-0.68 ms of CPU
// per storm cycle instead of 0.75-0.79 (A/B runs on 10,000 agents). The
// load generator shares the 2 cores with the server it measures, so what
// it spends is taken from the server. The server cannot tell the two
// clients apart: TLS (including session resumption), HTTP/1.1 and the
// agent protocol are the same.
type agentConn struct {
	tc        *tls.Conn
	br        *bufio.Reader
	a         agent
	host      string
	buf       []byte
	didResume bool
	// closing says the server closes the connection after its last
	// answer; the next request goes on a new one from redial.
	closing    bool
	redial     func() (*tls.Conn, error)
	reconnects int
}

// brPool keeps response readers across connections, as the Transport does.
var brPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4096) }}

// tlsConfig is agent a's TLS client configuration (its own certificate and,
// when sessions is set, its own session cache), as clientOpts asks.
func (a agent) tlsConfig(key *ecdsa.PrivateKey, pool *x509.CertPool, o clientOpts) *tls.Config {
	conf := &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12,
		Certificates: []tls.Certificate{{Certificate: [][]byte{a.cert}, PrivateKey: key}}}
	if o.x25519 {
		conf.CurvePreferences = []tls.CurveID{tls.X25519}
	}
	if o.sessions != nil {
		conf.ClientSessionCache = o.sessions
	}
	return conf
}

// dial opens agent a's connection (agent number i, from its own loopback
// address) to the server at base and completes the TLS handshake.
func (a agent) dial(ctx context.Context, i int, base string, conf *tls.Config) (*agentConn, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	c := &agentConn{a: a, host: u.Host, redial: func() (*tls.Conn, error) {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: loopback(i)}, Timeout: 30 * time.Second}
		ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		nc, err := d.DialContext(ctx, "tcp", u.Host)
		if err != nil {
			return nil, err
		}
		tc := tls.Client(nc, conf)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, err
		}
		return tc, nil
	}}
	if c.tc, err = c.redial(); err != nil {
		return nil, err
	}
	c.didResume = c.tc.ConnectionState().DidResume
	c.br = brPool.Get().(*bufio.Reader)
	c.br.Reset(c.tc)
	return c, nil
}

// reconnect replaces a connection the server said it closes (Connection:
// close: nginx after its keepalive_requests) with a new one, as net/http's
// Transport does.
func (c *agentConn) reconnect() error {
	c.tc.Close()
	tc, err := c.redial()
	if err != nil {
		return err
	}
	c.tc, c.closing = tc, false
	c.br.Reset(tc)
	c.reconnects++
	return nil
}

// close closes the connection and gives back its reader.
func (c *agentConn) close() {
	c.tc.Close()
	c.br.Reset(nil)
	brPool.Put(c.br)
}

// do sends one request (GET without body, or POST of a JSON body) and reads
// the whole answer; it returns the status and the answer's ETag.
func (c *agentConn) do(method, path, etag string, body []byte) (int, string, error) {
	if c.closing {
		if err := c.reconnect(); err != nil {
			return 0, "", fmt.Errorf("%s %s: reconnecting: %w", method, path, err)
		}
	}
	b := c.buf[:0]
	b = append(b, method...)
	b = append(b, ' ')
	b = append(b, path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, c.host...)
	b = append(b, "\r\nUser-Agent: Go-http-client/1.1\r\n"...)
	if body != nil {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(len(body)), 10)
		b = append(b, "\r\n"...)
	}
	b = append(b, wire.MachineIDHeader...)
	b = append(b, ": "...)
	b = append(b, c.a.machine...)
	b = append(b, "\r\n"...)
	if body != nil {
		b = append(b, "Content-Type: application/json\r\n"...)
	}
	if etag != "" {
		b = append(b, "If-None-Match: "...)
		b = append(b, etag...)
		b = append(b, "\r\n"...)
	}
	b = append(b, "Accept-Encoding: gzip\r\n\r\n"...)
	b = append(b, body...)
	c.buf = b
	// Every request and answer must finish within a minute, as the
	// agent's client timeout says.
	c.tc.SetDeadline(time.Now().Add(time.Minute))
	// A connection that failed is not used again: the next request goes
	// on a new one.
	c.closing = true
	if _, err := c.tc.Write(b); err != nil {
		return 0, "", fmt.Errorf("%s %s: %w", method, path, err)
	}
	resp, err := http.ReadResponse(c.br, &http.Request{Method: method})
	if err != nil {
		return 0, "", fmt.Errorf("%s %s: %w", method, path, err)
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, "", fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	c.closing = resp.Close
	return resp.StatusCode, resp.Header.Get("ETag"), nil
}

// agentClient is one agent's connection to the server: an agentConn
// (HTTP/1.1) or, for HTTP/2, a net/http client (h2Client).
type agentClient interface {
	// do sends one request (GET without body, or POST of a JSON body)
	// with If-None-Match etag when set, reads the whole answer and
	// returns its status and ETag.
	do(method, path, etag string, body []byte) (int, string, error)
	agent() agent
	resumed() bool
	close()
}

func (c *agentConn) agent() agent  { return c.a }
func (c *agentConn) resumed() bool { return c.didResume }

// h2Client is an agent's net/http client, as the HTTP/2 comparison needs.
type h2Client struct {
	ctx       context.Context
	hc        *http.Client
	url       string
	a         agent
	didResume atomic.Bool
}

func (c *h2Client) do(method, path, etag string, body []byte) (int, string, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(c.ctx, method, c.url+path, rd)
	if err != nil {
		return 0, "", err
	}
	req.Header.Set(wire.MachineIDHeader, c.a.machine)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, "", fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	return resp.StatusCode, resp.Header.Get("ETag"), nil
}

func (c *h2Client) agent() agent  { return c.a }
func (c *h2Client) resumed() bool { return c.didResume.Load() }
func (c *h2Client) close()        { c.hc.CloseIdleConnections() }

// openAgent opens agent a's (number i) connection to url: on an agentConn
// now, or over net/http (HTTP/2) with the first request.
func openAgent(ctx context.Context, a agent, i int, url string, key *ecdsa.PrivateKey, pool *x509.CertPool, o clientOpts) (agentClient, error) {
	if !o.h2 {
		return a.dial(ctx, i, url, a.tlsConfig(key, pool, o))
	}
	c := &h2Client{ctx: ctx, hc: a.client(i, key, pool, o), url: url, a: a}
	c.hc.Transport.(*http.Transport).TLSClientConfig.VerifyConnection = func(cs tls.ConnectionState) error {
		c.didResume.Store(cs.DidResume)
		return nil
	}
	return c, nil
}
