package content_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/content"
	"github.com/bulwarkhq/bulwark/internal/content/s3test"
)

// backends opens a fresh store of each kind: a directory, and a bucket of
// a real versitygw.
func backends(t *testing.T) map[string]content.Store {
	t.Helper()
	d, err := content.OpenDir(filepath.Join(t.TempDir(), "content"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	vg := s3test.Start(t)
	vgs := s3test.StartTLS(t)
	return map[string]content.Store{"dir": d, "s3": vg.Open(t, "bulwark-test", "site-a/content"),
		"s3 over https, private CA": vgs.Open(t, "bulwark-test", "site-a/content")}
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

func get(t *testing.T, st content.Store, key string) []byte {
	t.Helper()
	o, err := st.Open(context.Background(), key)
	if err != nil {
		t.Fatalf("open %s: %v", key, err)
	}
	defer o.Close()
	b, err := io.ReadAll(o)
	if err != nil {
		t.Fatal(err)
	}
	if o.Info().Size != int64(len(b)) {
		t.Fatalf("%s: Info().Size %d, read %d bytes", key, o.Info().Size, len(b))
	}
	return b
}

func missing(t *testing.T, st content.Store, key, when string) {
	t.Helper()
	o, err := st.Open(context.Background(), key)
	if err == nil {
		b, _ := io.ReadAll(o)
		o.Close()
		t.Fatalf("%s: %s readable (%d bytes), want not there", when, key, len(b))
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("%s: open %s: %v, want fs.ErrNotExist", when, key, err)
	}
}

// failingReader gives n bytes of data, then fails: a crash of the writer,
// or its connection cut, in the middle of an upload.
type failingReader struct {
	r io.Reader
}

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, errors.New("writer died")
	}
	return n, err
}

// TestConformance runs the same cases against every backend.
func TestConformance(t *testing.T) {
	ctx := context.Background()
	for name, st := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Run("round trip and ranges", func(t *testing.T) {
				data := pattern(300 << 10)
				if err := st.Put(ctx, "example/targets/updates/BW-1/abc.a.deb", bytes.NewReader(data), int64(len(data))); err != nil {
					t.Fatal(err)
				}
				if got := get(t, st, "example/targets/updates/BW-1/abc.a.deb"); !bytes.Equal(got, data) {
					t.Fatalf("read back %d bytes, not what was put", len(got))
				}
				o, err := st.Open(ctx, "example/targets/updates/BW-1/abc.a.deb")
				if err != nil {
					t.Fatal(err)
				}
				defer o.Close()
				if end, err := o.Seek(0, io.SeekEnd); err != nil || end != int64(len(data)) {
					t.Fatalf("seek to end: %d %v", end, err)
				}
				for _, off := range []int64{200 << 10, 1, 0, 299 << 10} {
					if _, err := o.Seek(off, io.SeekStart); err != nil {
						t.Fatal(err)
					}
					buf := make([]byte, 1000)
					if _, err := io.ReadFull(o, buf); err != nil {
						t.Fatalf("read at %d: %v", off, err)
					}
					if !bytes.Equal(buf, data[off:off+1000]) {
						t.Fatalf("bytes at %d differ", off)
					}
				}
				if time.Since(o.Info().ModTime) > time.Hour {
					t.Fatalf("modification time %v", o.Info().ModTime)
				}
			})
			t.Run("missing", func(t *testing.T) {
				missing(t, st, "example/targets/none", "never put")
			})
			t.Run("failed upload leaves nothing", func(t *testing.T) {
				data := pattern(64 << 10)
				err := st.Put(ctx, "example/targets/half", &failingReader{bytes.NewReader(data[:30<<10])}, int64(len(data)))
				if err == nil {
					t.Fatal("a failed upload reported success")
				}
				missing(t, st, "example/targets/half", "after a failed upload")
				if err := st.Put(ctx, "example/targets/short", bytes.NewReader(data[:10]), int64(len(data))); err == nil {
					t.Fatal("an upload shorter than its size reported success")
				}
				missing(t, st, "example/targets/short", "after a short upload")
			})
			t.Run("failed replace keeps the old object", func(t *testing.T) {
				old, data := pattern(1000), pattern(50<<10)
				if err := st.Put(ctx, "example/targets/keep", bytes.NewReader(old), int64(len(old))); err != nil {
					t.Fatal(err)
				}
				if err := st.Put(ctx, "example/targets/keep", &failingReader{bytes.NewReader(data[:20<<10])}, int64(len(data))); err == nil {
					t.Fatal("a failed replace reported success")
				}
				if got := get(t, st, "example/targets/keep"); !bytes.Equal(got, old) {
					t.Fatalf("after a failed replace: %d bytes, want the old %d", len(got), len(old))
				}
			})
			t.Run("nothing visible during an upload", func(t *testing.T) {
				// Larger than one multipart part (16 MiB) so that S3 has
				// stored a part before the check.
				data := pattern(17 << 20)
				pr, pw := io.Pipe()
				done := make(chan error, 1)
				go func() { done <- st.Put(ctx, "example/targets/big", pr, int64(len(data))) }()
				if _, err := pw.Write(data[:16<<20+512<<10]); err != nil {
					t.Fatal(err)
				}
				missing(t, st, "example/targets/big", "during the upload")
				pw.Write(data[16<<20+512<<10:])
				pw.Close()
				if err := <-done; err != nil {
					t.Fatal(err)
				}
				if got := get(t, st, "example/targets/big"); !bytes.Equal(got, data) {
					t.Fatal("uploaded object differs")
				}
			})
			t.Run("list and delete", func(t *testing.T) {
				for _, k := range []string{"l/a/2", "l/a/1", "l/b/1", "la/x"} {
					if err := st.Put(ctx, k, strings.NewReader(k), int64(len(k))); err != nil {
						t.Fatal(err)
					}
				}
				ls, err := st.List(ctx, "l/a/")
				if err != nil {
					t.Fatal(err)
				}
				if len(ls) != 2 || ls[0].Key != "l/a/1" || ls[1].Key != "l/a/2" || ls[0].Size != 5 {
					t.Fatalf("list l/a/: %+v", ls)
				}
				if err := st.Delete(ctx, "l/a/1"); err != nil {
					t.Fatal(err)
				}
				if err := st.Delete(ctx, "l/a/1"); err != nil {
					t.Fatalf("deleting a missing key: %v", err)
				}
				missing(t, st, "l/a/1", "after delete")
				if ls, _ := st.List(ctx, "l/"); len(ls) != 2 {
					t.Fatalf("list l/ after delete: %+v", ls)
				}
			})
			t.Run("bad keys", func(t *testing.T) {
				for _, k := range []string{"", "/abs", "../up", "a/../b", "a//b", ".hidden/x", "a/.tmp-x", "a\\b", "a/\x00", "a/"} {
					if _, err := st.Open(ctx, k); !errors.Is(err, fs.ErrInvalid) {
						t.Errorf("open %q: %v, want refused as invalid", k, err)
					}
					if err := st.Put(ctx, k, strings.NewReader("x"), 1); !errors.Is(err, fs.ErrInvalid) {
						t.Errorf("put %q: %v, want refused as invalid", k, err)
					}
				}
			})
		})
	}
}

// FuzzCheckKey: an accepted key stays inside the store's directory, has no
// hidden or parent components, and is its own clean form.
func FuzzCheckKey(f *testing.F) {
	for _, s := range []string{"a/b", "../x", "a/./b", "example/targets/updates/BW-1/0a.deb", ".x", "a/b/", "a\\..\\b", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		if content.CheckKey(key) != nil {
			return
		}
		if path.Clean(key) != key || path.IsAbs(key) {
			t.Fatalf("accepted %q: not clean", key)
		}
		for _, c := range strings.Split(key, "/") {
			if c == ".." || strings.HasPrefix(c, ".") || strings.Contains(c, "\\") {
				t.Fatalf("accepted %q: component %q", key, c)
			}
		}
		if rel, err := filepath.Rel("/store", filepath.Join("/store", filepath.FromSlash(key))); err != nil || strings.HasPrefix(rel, "..") {
			t.Fatalf("accepted %q: leaves the store (%s)", key, rel)
		}
	})
}

// TestSetupInstallsThisVersion: the setup script installs the versitygw
// the tests are written for.
func TestSetupInstallsThisVersion(t *testing.T) {
	b, err := os.ReadFile("../../scripts/setup.d/versitygw.sh")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "versitygw_version="+s3test.Version+"\n") {
		t.Fatalf("scripts/setup.d/versitygw.sh does not install %s", s3test.Version)
	}
}

// cutProxy forwards TCP connections to addr and cuts each one (both ways)
// once n bytes went from the client to the server: a network that fails in
// the middle of an upload.
func cutProxy(t *testing.T, addr string, n int64) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", addr)
			if err != nil {
				c.Close()
				continue
			}
			go func() { io.Copy(c, s); c.Close() }()
			go func() { io.CopyN(s, c, n); s.Close(); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

// TestUploadCutMidwayLeavesNothing: the connection to the object store is
// cut in the middle of every upload (plain HTTP and HTTPS). The upload
// fails, nothing appears under a new key, and an existing object keeps its
// bytes: no reader ever gets part of an upload.
func TestUploadCutMidwayLeavesNothing(t *testing.T) {
	ctx := context.Background()
	for name, vg := range map[string]*s3test.Server{"http": s3test.Start(t), "https": s3test.StartTLS(t)} {
		t.Run(name, func(t *testing.T) {
			cfg := vg.Bucket(t, "cut", "")
			direct, err := content.OpenS3(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			old := pattern(1000)
			if err := direct.Put(ctx, "k/old", bytes.NewReader(old), int64(len(old))); err != nil {
				t.Fatal(err)
			}
			scheme, host, _ := strings.Cut(cfg.Endpoint, "://")
			cfg.Endpoint = scheme + "://" + cutProxy(t, host, 600<<10)
			cfg.MaxRetries = 2
			cut, err := content.OpenS3(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			data := pattern(1 << 20)
			if err := cut.Put(ctx, "k/new", bytes.NewReader(data), int64(len(data))); err == nil {
				t.Fatal("an upload cut midway reported success")
			}
			missing(t, direct, "k/new", "after an upload cut midway")
			if err := cut.Put(ctx, "k/old", bytes.NewReader(data), int64(len(data))); err == nil {
				t.Fatal("a replace cut midway reported success")
			}
			if got := get(t, direct, "k/old"); !bytes.Equal(got, old) {
				t.Fatalf("after a replace cut midway: %d bytes, want the old %d", len(got), len(old))
			}
		})
	}
}
