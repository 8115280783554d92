package fetch

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fastLimits keep the slow-retrieval tests short: under 1 KiB/s over 300ms
// is too slow.
var fastLimits = Limits{MinSpeed: 1024, SpeedWindow: 300 * time.Millisecond, Timeout: 30 * time.Second}

func newTestClient(t testing.TB, opts Options) *Client {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return New(opts)
}

type testLogWriter struct{ t testing.TB }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// payload returns n deterministic pseudo-random bytes.
func payload(t testing.TB, n int, seed uint64) []byte {
	t.Helper()
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	r.Read(b)
	return b
}

func wantOf(b []byte) Want {
	sum := sha256.Sum256(b)
	return Want{Length: int64(len(b)), SHA256: hex.EncodeToString(sum[:])}
}

func serve(t testing.TB, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// endless writes without a Content-Length until the client goes away.
func endless(w http.ResponseWriter, r *http.Request) {
	chunk := bytes.Repeat([]byte("A"), 32<<10)
	for r.Context().Err() == nil {
		if _, err := w.Write(chunk); err != nil {
			return
		}
	}
}

// drip sends one byte every 20ms: the connection stays alive, the speed is
// about 50 B/s.
func drip(w http.ResponseWriter, r *http.Request) {
	for r.Context().Err() == nil {
		if _, err := w.Write([]byte{'x'}); err != nil {
			return
		}
		http.NewResponseController(w).Flush()
		time.Sleep(20 * time.Millisecond)
	}
}

// stallAfter sends the headers and the first bytes of body, then nothing.
func stallAfter(body []byte, n int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		w.Header().Set("ETag", `"v1"`)
		w.Write(body[:n])
		http.NewResponseController(w).Flush()
		<-r.Context().Done()
	}
}

// rawResponse hijacks the connection, writes head and body as they are,
// and closes the connection: a server that lies or is cut off.
func rawResponse(t testing.TB, w http.ResponseWriter, head string, body []byte) {
	t.Helper()
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		t.Errorf("hijack: %v", err)
		return
	}
	defer conn.Close()
	brw.WriteString(head)
	brw.Write(body)
	brw.Flush()
}

func gzipBomb(t testing.TB, n int) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zeros := make([]byte, 1<<20)
	for i := 0; i < n>>20; i++ {
		zw.Write(zeros)
	}
	zw.Close()
	return buf.Bytes()
}

func TestBytesAttacks(t *testing.T) {
	bomb := gzipBomb(t, 16<<20)
	tests := []struct {
		name    string
		handler func(t testing.TB) http.HandlerFunc
		lim     Limits
		wantErr error
		check   func(t *testing.T, got []byte)
	}{
		{
			name:    "endless data without content-length",
			handler: func(testing.TB) http.HandlerFunc { return endless },
			lim:     Limits{MaxBytes: 64 << 10},
			wantErr: ErrTooLarge,
		},
		{
			name: "declared content-length above the cap",
			handler: func(testing.TB) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Length", fmt.Sprint(10<<20))
					w.Write(make([]byte, 10<<20))
				}
			},
			lim:     Limits{MaxBytes: 64 << 10},
			wantErr: ErrTooLarge,
		},
		{
			// The lie cannot smuggle more than the declared bytes past the
			// cap: the client stops at Content-Length.
			name: "content-length smaller than the body",
			handler: func(t testing.TB) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					rawResponse(t, w, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 16\r\n\r\n", bytes.Repeat([]byte("B"), 1<<20))
				}
			},
			lim: Limits{MaxBytes: 1 << 10},
			check: func(t *testing.T, got []byte) {
				if string(got) != strings.Repeat("B", 16) {
					t.Errorf("got %d bytes, want the 16 declared", len(got))
				}
			},
		},
		{
			name: "gzip bomb",
			handler: func(testing.TB) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Encoding", "gzip")
					w.Header().Set("Content-Length", fmt.Sprint(len(bomb)))
					w.Write(bomb)
				}
			},
			lim:     Limits{MaxBytes: 1 << 20},
			wantErr: ErrTooLarge,
		},
		{
			name:    "slow retrieval: drip",
			handler: func(testing.TB) http.HandlerFunc { return drip },
			lim:     Limits{MaxBytes: 1 << 20, MinSpeed: fastLimits.MinSpeed, SpeedWindow: fastLimits.SpeedWindow},
			wantErr: ErrTooSlow,
		},
		{
			name: "slow retrieval: stall before headers",
			handler: func(testing.TB) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }
			},
			lim:     Limits{MaxBytes: 1 << 20, MinSpeed: fastLimits.MinSpeed, SpeedWindow: fastLimits.SpeedWindow},
			wantErr: ErrTooSlow,
		},
		{
			name:    "slow retrieval: stall after headers",
			handler: func(testing.TB) http.HandlerFunc { return stallAfter(make([]byte, 1000), 10) },
			lim:     Limits{MaxBytes: 1 << 20, MinSpeed: fastLimits.MinSpeed, SpeedWindow: fastLimits.SpeedWindow},
			wantErr: ErrTooSlow,
		},
		{
			name: "fast but never-ending within the cap: total timeout",
			handler: func(testing.TB) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					for r.Context().Err() == nil {
						w.Write(make([]byte, 4<<10))
						http.NewResponseController(w).Flush()
						time.Sleep(10 * time.Millisecond)
					}
				}
			},
			lim:     Limits{MaxBytes: 1 << 30, Timeout: 500 * time.Millisecond, MinSpeed: fastLimits.MinSpeed, SpeedWindow: fastLimits.SpeedWindow},
			wantErr: ErrTimeout,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := serve(t, tt.handler(t))
			start := time.Now()
			got, err := newTestClient(t, Options{}).Bytes(t.Context(), srv.URL+"/x", tt.lim)
			t.Logf("took %v: %v", time.Since(start), err)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if got != nil {
					t.Errorf("got %d bytes along with the error", len(got))
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			tt.check(t, got)
		})
	}
}

func TestBytesGzipDecoded(t *testing.T) {
	want := payload(t, 100<<10, 1)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(want)
	zw.Close()
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept-Encoding") != "gzip" {
			t.Errorf("Accept-Encoding = %q, want the transport's gzip", r.Header.Get("Accept-Encoding"))
		}
		w.Header().Set("Content-Encoding", "gzip")
		w.Write(buf.Bytes())
	})
	got, err := newTestClient(t, Options{UserAgent: "bulwark-test"}).Bytes(t.Context(), srv.URL, Limits{MaxBytes: 100 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("got %d bytes, not the decoded payload", len(got))
	}
}

func TestBytesRetriesServerError(t *testing.T) {
	var calls atomic.Int32
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok"))
	})
	got, err := newTestClient(t, Options{}).Bytes(t.Context(), srv.URL, Limits{MaxBytes: 10})
	if err != nil || string(got) != "ok" {
		t.Fatalf("got %q, %v; want ok after a retry", got, err)
	}
	if calls.Load() != 2 {
		t.Fatalf("%d requests, want 2", calls.Load())
	}
}

func TestHTTPStatus(t *testing.T) {
	srv := serve(t, http.NotFound)
	c := newTestClient(t, Options{})
	_, err := c.Bytes(t.Context(), srv.URL+"/missing", Limits{MaxBytes: 10})
	var he *HTTPError
	if !errors.As(err, &he) || he.StatusCode != http.StatusNotFound || he.URL != srv.URL+"/missing" {
		t.Fatalf("Bytes err = %v, want HTTPError 404 naming the URL", err)
	}
	err = c.File(t.Context(), srv.URL+"/missing", t.TempDir()+"/f", wantOf([]byte("x")), FileOptions{})
	if !errors.As(err, &he) || he.StatusCode != http.StatusNotFound {
		t.Fatalf("File err = %v, want HTTPError 404", err)
	}
}

func TestInputErrors(t *testing.T) {
	c := newTestClient(t, Options{})
	good := wantOf([]byte("x"))
	dir := t.TempDir()
	tests := []struct {
		name string
		call func() error
		arg  string
	}{
		{"bytes without a cap", func() error { _, err := c.Bytes(t.Context(), "http://127.0.0.1/x", Limits{}); return err }, "Limits.MaxBytes"},
		{"negative cap", func() error { _, err := c.Bytes(t.Context(), "http://127.0.0.1/x", Limits{MaxBytes: -1}); return err }, "Limits.MaxBytes"},
		{"negative min speed", func() error {
			_, err := c.Bytes(t.Context(), "http://127.0.0.1/x", Limits{MaxBytes: 1, MinSpeed: -1})
			return err
		}, "Limits.MinSpeed"},
		{"ftp url", func() error { _, err := c.Bytes(t.Context(), "ftp://host/x", Limits{MaxBytes: 1}); return err }, "URL"},
		{"http without host", func() error { _, err := c.Bytes(t.Context(), "http:///x", Limits{MaxBytes: 1}); return err }, "URL"},
		{"relative file url", func() error { _, err := c.Bytes(t.Context(), "file:rel/x", Limits{MaxBytes: 1}); return err }, "URL"},
		{"file url with remote host", func() error { _, err := c.Bytes(t.Context(), "file://other/x", Limits{MaxBytes: 1}); return err }, "URL"},
		{"uppercase sha256", func() error {
			return c.File(t.Context(), "http://127.0.0.1/x", dir+"/f", Want{Length: 1, SHA256: strings.ToUpper(good.SHA256)}, FileOptions{})
		}, "Want.SHA256"},
		{"short sha256", func() error {
			return c.File(t.Context(), "http://127.0.0.1/x", dir+"/f", Want{Length: 1, SHA256: "abc"}, FileOptions{})
		}, "Want.SHA256"},
		{"negative length", func() error {
			return c.File(t.Context(), "http://127.0.0.1/x", dir+"/f", Want{Length: -1, SHA256: good.SHA256}, FileOptions{})
		}, "Want.Length"},
		{"empty dst", func() error { return c.File(t.Context(), "http://127.0.0.1/x", "", good, FileOptions{}) }, "dst"},
		{"unknown mode", func() error { return c.File(t.Context(), "http://127.0.0.1/x", dir+"/f", good, FileOptions{Mode: 7}) }, "FileOptions.Mode"},
		{"background target above 100ms", func() error {
			return c.File(t.Context(), "http://127.0.0.1/x", dir+"/f", good, FileOptions{Mode: Background, Background: BackgroundOptions{Target: time.Second}})
		}, "Background.Target"},
		{"background probes too often", func() error {
			return c.File(t.Context(), "http://127.0.0.1/x", dir+"/f", good, FileOptions{Mode: Background, Background: BackgroundOptions{ProbeEvery: time.Millisecond}})
		}, "Background.ProbeEvery"},
		{"background floor below the minimum speed", func() error {
			return c.File(t.Context(), "http://127.0.0.1/x", dir+"/f", good, FileOptions{
				Mode: Background, Background: BackgroundOptions{MinRate: 4 << 10}, Limits: Limits{MinSpeed: 8 << 10},
			})
		}, "Background.MinRate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ie *InputError
			if err := tt.call(); !errors.As(err, &ie) || ie.Name != tt.arg || ie.Valid == "" {
				t.Fatalf("err = %v, want an InputError about %s", err, tt.arg)
			}
		})
	}
}

func TestCallerCancel(t *testing.T) {
	srv := serve(t, stallAfter(make([]byte, 100), 1))
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err := newTestClient(t, Options{}).Bytes(ctx, srv.URL, Limits{MaxBytes: 100})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}
