package fetch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

// assertNoFile fails if path exists.
func assertNoFile(t testing.TB, path string) {
	t.Helper()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s exists (err %v), want it absent", filepath.Base(path), err)
	}
}

func assertFile(t testing.TB, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read result: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes, not the wanted %d", filepath.Base(path), len(got), len(want))
	}
	assertNoFile(t, path+PartialSuffix)
	assertNoFile(t, path+MetaSuffix)
}

// requests records the Range and If-Range headers of each request.
type requests struct {
	mu   sync.Mutex
	list []http.Header
}

func (r *requests) add(h http.Header) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, h.Clone())
	return len(r.list)
}

func (r *requests) get(i int) http.Header {
	r.mu.Lock()
	defer r.mu.Unlock()
	if i >= len(r.list) {
		return nil
	}
	return r.list[i]
}

func (r *requests) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.list)
}

func TestFileAttacks(t *testing.T) {
	good := payload(t, 256<<10, 2)
	evil := payload(t, 256<<10, 3)
	tests := []struct {
		name     string
		handler  func(t testing.TB) http.HandlerFunc
		wantErr  error
		keepPart bool // the partial file stays for a later resume
	}{
		{
			name:    "endless data without content-length",
			handler: func(testing.TB) http.HandlerFunc { return endless },
			wantErr: ErrTooLarge,
		},
		{
			name: "declared length above the wanted length",
			handler: func(testing.TB) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Length", fmt.Sprint(len(good)+1))
					w.Write(good)
					w.Write([]byte{0})
				}
			},
			wantErr: ErrTooLarge,
		},
		{
			name: "right bytes then extra bytes without content-length",
			handler: func(t testing.TB) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					rawResponse(t, w, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", append(bytes.Clone(good), "extra"...))
				}
			},
			wantErr: ErrTooLarge,
		},
		{
			name: "arbitrary payload: right length, wrong bytes",
			handler: func(testing.TB) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) { w.Write(evil) }
			},
			wantErr: ErrHashMismatch,
		},
		{
			// The transport stops at the declared length, so the file is
			// short and refused.
			name: "content-length smaller than the body",
			handler: func(t testing.TB) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					rawResponse(t, w, fmt.Sprintf("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %d\r\n\r\n", len(good)/2), good)
				}
			},
			wantErr: ErrLengthMismatch,
		},
		{
			name: "not found leaves no partial file",
			handler: func(testing.TB) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }
			},
			wantErr: &HTTPError{},
		},
		{
			// Nothing arrived: an empty partial file is no help to a resume.
			name:    "slow retrieval: stall before the first byte leaves nothing",
			handler: func(testing.TB) http.HandlerFunc { return stallAfter(good, 0) },
			wantErr: ErrTooSlow,
		},
		{
			name:     "slow retrieval: drip",
			handler:  func(testing.TB) http.HandlerFunc { return drip },
			wantErr:  ErrTooSlow,
			keepPart: true,
		},
		{
			name:     "slow retrieval: stall",
			handler:  func(testing.TB) http.HandlerFunc { return stallAfter(good, 1000) },
			wantErr:  ErrTooSlow,
			keepPart: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := serve(t, tt.handler(t))
			dst := filepath.Join(t.TempDir(), "payload.deb")
			// Only the slow-retrieval rows get a short speed window: on a
			// loaded machine the others must not fail for being slow.
			var lim Limits
			if tt.wantErr == ErrTooSlow {
				lim = fastLimits
			}
			err := newTestClient(t, Options{}).File(t.Context(), srv.URL+"/p", dst, wantOf(good), FileOptions{Limits: lim})
			if he := (*HTTPError)(nil); errors.As(tt.wantErr, &he) {
				if !errors.As(err, &he) {
					t.Fatalf("err = %v, want an HTTPError", err)
				}
			} else if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			assertNoFile(t, dst)
			if !tt.keepPart {
				assertNoFile(t, dst+PartialSuffix)
				assertNoFile(t, dst+MetaSuffix)
			} else if _, err := os.Stat(dst + PartialSuffix); err != nil {
				t.Errorf("partial file gone after %v; want it kept for a resume", tt.wantErr)
			}
		})
	}
}

func TestFileDownloads(t *testing.T) {
	c := newTestClient(t, Options{})
	good := payload(t, 300<<10, 4)
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "p", time.Time{}, bytes.NewReader(good))
	})
	dir := t.TempDir()
	dst := filepath.Join(dir, "p")
	var calls []int64
	err := c.File(t.Context(), srv.URL, dst, wantOf(good), FileOptions{
		Progress: func(done, total int64) { calls = append(calls, done, total) },
	})
	if err != nil {
		t.Fatal(err)
	}
	assertFile(t, dst, good)
	fi, _ := os.Stat(dst)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	if n := len(calls); n < 2 || calls[n-2] != int64(len(good)) || calls[n-1] != int64(len(good)) {
		t.Errorf("progress calls %v, want a final call with done == total == %d", calls, len(good))
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("files left next to dst: %v", entries)
	}
}

func TestFileEmpty(t *testing.T) {
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {})
	dst := filepath.Join(t.TempDir(), "empty")
	if err := newTestClient(t, Options{}).File(t.Context(), srv.URL, dst, wantOf(nil), FileOptions{}); err != nil {
		t.Fatal(err)
	}
	assertFile(t, dst, nil)
}

func TestFileExistingCompleteNoRequest(t *testing.T) {
	good := payload(t, 10<<10, 5)
	var reqs requests
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) { reqs.add(r.Header); w.Write(good) })
	dst := filepath.Join(t.TempDir(), "p")
	if err := os.WriteFile(dst, good, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := newTestClient(t, Options{}).File(t.Context(), srv.URL, dst, wantOf(good), FileOptions{}); err != nil {
		t.Fatal(err)
	}
	if reqs.len() != 0 {
		t.Fatalf("%d requests for a dst that was already complete, want 0", reqs.len())
	}
	// A dst with other content is replaced.
	if err := os.WriteFile(dst, payload(t, 10<<10, 6), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := newTestClient(t, Options{}).File(t.Context(), srv.URL, dst, wantOf(good), FileOptions{}); err != nil {
		t.Fatal(err)
	}
	assertFile(t, dst, good)
	if reqs.len() != 1 {
		t.Fatalf("%d requests to replace a wrong dst, want 1", reqs.len())
	}
}

// resumeServer cuts the first answer after cut bytes; later answers come
// from serveLater.
func resumeServer(t testing.TB, first []byte, cut int, etag string, serveLater http.HandlerFunc) (*requests, string) {
	t.Helper()
	reqs := new(requests)
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if reqs.add(r.Header) == 1 {
			rawResponse(t, w, fmt.Sprintf("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %d\r\nETag: %s\r\n\r\n", len(first), etag), first[:cut])
			return
		}
		serveLater(w, r)
	})
	return reqs, srv.URL + "/p"
}

func TestFileResume(t *testing.T) {
	good := payload(t, 512<<10, 7)
	old := payload(t, 512<<10, 8) // the previous version at the same URL
	const cut = 100_000
	rangeServer := func(etag string, body []byte) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("ETag", etag)
			http.ServeContent(w, r, "p", time.Time{}, bytes.NewReader(body))
		}
	}
	tests := []struct {
		name       string
		first      []byte // bytes of the cut first answer
		serveLater http.HandlerFunc
		wantRanged bool // the second answer continued at the cut
	}{
		{
			name:       "server cuts the connection mid-body: resume with Range",
			first:      good,
			serveLater: rangeServer(`"v1"`, good),
			wantRanged: true,
		},
		{
			name:  "server ignores Range: start over",
			first: good,
			serveLater: func(w http.ResponseWriter, r *http.Request) {
				w.Write(good)
			},
		},
		{
			name:       "ETag changed between attempts: start over",
			first:      old,
			serveLater: rangeServer(`"v2"`, good),
		},
		{
			name:  "416 range not satisfiable: start over",
			first: good,
			serveLater: func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Range") != "" {
					http.Error(w, "no", http.StatusRequestedRangeNotSatisfiable)
					return
				}
				w.Write(good)
			},
		},
		{
			name:  "Content-Range from the wrong offset: start over",
			first: old,
			serveLater: func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Range") != "" {
					w.Header().Set("Content-Range", fmt.Sprintf("bytes 0-%d/%d", len(good)-1, len(good)))
					w.WriteHeader(http.StatusPartialContent)
					w.Write(good)
					return
				}
				w.Write(good)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			reqs, url := resumeServer(t, tt.first, cut, `"v1"`, tt.serveLater)
			dst := filepath.Join(t.TempDir(), "p")
			if err := newTestClient(t, Options{}).File(t.Context(), url, dst, wantOf(good), FileOptions{}); err != nil {
				t.Fatal(err)
			}
			assertFile(t, dst, good)
			second := reqs.get(1)
			if second == nil {
				t.Fatalf("%d requests, want a second one after the cut", reqs.len())
			}
			if got, want := second.Get("Range"), fmt.Sprintf("bytes=%d-", cut); got != want {
				t.Errorf("second request Range = %q, want %q", got, want)
			}
			if got := second.Get("If-Range"); got != `"v1"` {
				t.Errorf("second request If-Range = %q, want the first ETag", got)
			}
			if tt.wantRanged && reqs.len() != 2 {
				t.Errorf("%d requests, want 2 (one cut, one resumed)", reqs.len())
			}
		})
	}
}

// A stalled download keeps its partial file; the next File call resumes it
// from the sidecar's validator.
func TestFileResumeAcrossCalls(t *testing.T) {
	good := payload(t, 200<<10, 9)
	const have = 50_000
	var reqs requests
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if reqs.add(r.Header) == 1 {
			stallAfter(good, have)(w, r)
			return
		}
		w.Header().Set("ETag", `"v1"`)
		http.ServeContent(w, r, "p", time.Time{}, bytes.NewReader(good))
	})
	dst := filepath.Join(t.TempDir(), "p")
	c := newTestClient(t, Options{})
	err := c.File(t.Context(), srv.URL, dst, wantOf(good), FileOptions{Limits: fastLimits})
	if !errors.Is(err, ErrTooSlow) {
		t.Fatalf("first call err = %v, want ErrTooSlow", err)
	}
	fi, err := os.Stat(dst + PartialSuffix)
	if err != nil || fi.Size() != have || fi.Mode().Perm() != 0o600 {
		t.Fatalf("partial after stall: %v %v, want %d bytes mode 0600", fi, err, have)
	}
	if err := c.File(t.Context(), srv.URL, dst, wantOf(good), FileOptions{}); err != nil {
		t.Fatal(err)
	}
	assertFile(t, dst, good)
	if h := reqs.get(1); h.Get("Range") != fmt.Sprintf("bytes=%d-", have) || h.Get("If-Range") != `"v1"` {
		t.Fatalf("second call sent Range %q If-Range %q; want a resume at %d", h.Get("Range"), h.Get("If-Range"), have)
	}
}

// A partial file left for another wanted file is not resumed.
func TestFilePartialOfOtherWantStartsOver(t *testing.T) {
	good := payload(t, 64<<10, 10)
	var reqs requests
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		reqs.add(r.Header)
		http.ServeContent(w, r, "p", time.Time{}, bytes.NewReader(good))
	})
	dst := filepath.Join(t.TempDir(), "p")
	os.WriteFile(dst+PartialSuffix, []byte("junk from another download"), 0o600)
	os.WriteFile(dst+MetaSuffix, []byte(`{"version":1,"url":"`+srv.URL+`","length":1,"sha256":"00"}`), 0o600)
	if err := newTestClient(t, Options{}).File(t.Context(), srv.URL, dst, wantOf(good), FileOptions{}); err != nil {
		t.Fatal(err)
	}
	assertFile(t, dst, good)
	if r := reqs.get(0).Get("Range"); r != "" {
		t.Fatalf("Range %q sent for a partial of another file, want none", r)
	}
}

func TestFileURL(t *testing.T) {
	dir := t.TempDir()
	good := payload(t, 100<<10, 11)
	src := filepath.Join(dir, "repo", "p.deb")
	os.MkdirAll(filepath.Dir(src), 0o700)
	if err := os.WriteFile(src, good, 0o644); err != nil {
		t.Fatal(err)
	}
	c := newTestClient(t, Options{})
	url := "file://" + src

	t.Run("bytes", func(t *testing.T) {
		got, err := c.Bytes(t.Context(), url, Limits{MaxBytes: int64(len(good))})
		if err != nil || !bytes.Equal(got, good) {
			t.Fatalf("got %d bytes, %v", len(got), err)
		}
	})
	t.Run("endless data: bytes cap", func(t *testing.T) {
		_, err := c.Bytes(t.Context(), url, Limits{MaxBytes: int64(len(good)) - 1})
		if !errors.Is(err, ErrTooLarge) {
			t.Fatalf("err = %v, want ErrTooLarge", err)
		}
	})
	t.Run("endless data: file longer than wanted", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "p")
		err := c.File(t.Context(), url, dst, wantOf(good[:1000]), FileOptions{})
		if !errors.Is(err, ErrTooLarge) {
			t.Fatalf("err = %v, want ErrTooLarge", err)
		}
		assertNoFile(t, dst)
		assertNoFile(t, dst+PartialSuffix)
	})
	t.Run("missing file is a 404", func(t *testing.T) {
		_, err := c.Bytes(t.Context(), url+".missing", Limits{MaxBytes: 10})
		var he *HTTPError
		if !errors.As(err, &he) || he.StatusCode != http.StatusNotFound || !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("err = %v, want HTTPError 404 wrapping ErrNotExist", err)
		}
	})
	t.Run("file and resume", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "p")
		// A first call stopped by its caller after some bytes.
		ctx, cancel := context.WithCancel(t.Context())
		err := c.File(ctx, url, dst, wantOf(good), FileOptions{Progress: func(done, _ int64) { cancel() }})
		if err == nil {
			t.Fatal("cancelled call succeeded")
		}
		fi, err := os.Stat(dst + PartialSuffix)
		if err != nil || fi.Size() == 0 {
			t.Fatalf("no partial after a cancel: %v", err)
		}
		if err := c.File(t.Context(), url, dst, wantOf(good), FileOptions{}); err != nil {
			t.Fatal(err)
		}
		assertFile(t, dst, good)
	})
}

func TestLimiter(t *testing.T) {
	good := payload(t, 512<<10, 12)
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) { w.Write(good) })
	lim := rate.NewLimiter(256<<10, 32<<10)
	c := newTestClient(t, Options{Limiter: lim})
	dst := filepath.Join(t.TempDir(), "p")
	start := time.Now()
	// MinSpeed above the limiter's rate: time spent waiting for tokens must
	// not count as a slow server.
	if err := c.File(t.Context(), srv.URL, dst, wantOf(good), FileOptions{Limits: Limits{MinSpeed: 1 << 20, SpeedWindow: 300 * time.Millisecond}}); err != nil {
		t.Fatal(err)
	}
	assertFile(t, dst, good)
	// (512 KiB - 32 KiB burst) / 256 KiB/s = 1.875 s; only a lower bound.
	if d := time.Since(start); d < 1500*time.Millisecond {
		t.Fatalf("512 KiB at 256 KiB/s took %v, want at least 1.5s", d)
	}
}

// counterReader produces n bytes of a cheap pattern without holding them.
type counterReader struct{ i, n int64 }

func (r *counterReader) Read(p []byte) (int, error) {
	if r.i >= r.n {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.n-r.i)]
	for k := range p {
		p[k] = byte((r.i + int64(k)) * 7 >> 3)
	}
	r.i += int64(len(p))
	return len(p), nil
}

func TestFileMemoryFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("64 MiB download; skipped in -short")
	}
	const size = 64 << 20
	h := sha256.New()
	io.Copy(h, &counterReader{n: size})
	want := Want{Length: size, SHA256: hex.EncodeToString(h.Sum(nil))}
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(size))
		io.CopyBuffer(w, &counterReader{n: size}, make([]byte, 32<<10))
	})
	dst := filepath.Join(t.TempDir(), "big")
	c := newTestClient(t, Options{})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if err := c.File(t.Context(), srv.URL, dst, want, FileOptions{Limits: Limits{MinSpeed: 1, SpeedWindow: time.Minute}}); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("64 MiB download allocated %d bytes (client and server)", alloc)
	if alloc > 1<<20 {
		t.Fatalf("64 MiB download allocated %d bytes, want under 1 MiB", alloc)
	}
	fi, err := os.Stat(dst)
	if err != nil || fi.Size() != size {
		t.Fatalf("result: %v %v", fi, err)
	}
}

func TestFileRetriesAreBounded(t *testing.T) {
	good := payload(t, 10<<10, 13)
	var calls atomic.Int32
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		rawResponse(t, w, fmt.Sprintf("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %d\r\n\r\n", len(good)), good[:10])
	})
	dst := filepath.Join(t.TempDir(), "p")
	err := newTestClient(t, Options{}).File(t.Context(), srv.URL, dst, wantOf(good), FileOptions{})
	if err == nil || !strings.Contains(err.Error(), "unexpected EOF") {
		t.Fatalf("err = %v, want the cut connection reported", err)
	}
	if n := calls.Load(); n != maxAttempts {
		t.Fatalf("%d requests, want %d", n, maxAttempts)
	}
}

// TestFileChecksEveryListedHash: TUF lists one or more hashes per target;
// every one of a supported algorithm must match, and one is required.
func TestFileChecksEveryListedHash(t *testing.T) {
	good := payload(t, 64<<10, 5)
	s256 := sha256.Sum256(good)
	s512 := sha512.Sum512(good)
	wrong512 := sha512.Sum512([]byte("something else"))
	wrong256 := sha256.Sum256([]byte("something else"))
	n := int64(len(good))
	tests := []struct {
		name    string
		want    Want
		wantErr error
	}{
		{"sha512 only", Want{Length: n, SHA512: hex.EncodeToString(s512[:])}, nil},
		{"sha256 and sha512", Want{Length: n, SHA256: hex.EncodeToString(s256[:]), SHA512: hex.EncodeToString(s512[:])}, nil},
		{"right sha256 beside a wrong sha512", Want{Length: n, SHA256: hex.EncodeToString(s256[:]), SHA512: hex.EncodeToString(wrong512[:])}, ErrHashMismatch},
		{"wrong sha256 beside a right sha512", Want{Length: n, SHA256: hex.EncodeToString(wrong256[:]), SHA512: hex.EncodeToString(s512[:])}, ErrHashMismatch},
		{"wrong sha512 only", Want{Length: n, SHA512: hex.EncodeToString(wrong512[:])}, ErrHashMismatch},
		{"no hash at all", Want{Length: n}, &InputError{}},
		{"short sha512", Want{Length: n, SHA512: hex.EncodeToString(s256[:])}, &InputError{}},
	}
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) { w.Write(good) })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "payload")
			err := newTestClient(t, Options{}).File(t.Context(), srv.URL, dst, tt.want, FileOptions{})
			switch ie := (*InputError)(nil); {
			case tt.wantErr == nil:
				if err != nil {
					t.Fatal(err)
				}
				assertFile(t, dst, good)
				return
			case errors.As(tt.wantErr, &ie):
				if !errors.As(err, &ie) {
					t.Fatalf("err = %v, want an InputError", err)
				}
			case !errors.Is(err, tt.wantErr):
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			assertNoFile(t, dst)
			assertNoFile(t, dst+PartialSuffix)
			assertNoFile(t, dst+MetaSuffix)
		})
	}
}
