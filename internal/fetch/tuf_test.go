package fetch

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

func TestTUFFetcher(t *testing.T) {
	root := []byte(`{"signed":{"_type":"root"}}`)
	srv := serve(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/1.root.json":
			w.Write(root)
		case "/forbidden":
			http.Error(w, "no", http.StatusForbidden)
		case "/endless":
			endless(w, r)
		case "/drip":
			drip(w, r)
		default:
			http.NotFound(w, r)
		}
	})
	c := newTestClient(t, Options{})
	f := c.TUFFetcher(t.Context(), Limits{})
	// Only the slow-retrieval row gets a short speed window.
	fast := c.TUFFetcher(t.Context(), Limits{MinSpeed: fastLimits.MinSpeed, SpeedWindow: fastLimits.SpeedWindow})

	got, err := f.DownloadFile(srv.URL+"/1.root.json", 1<<10, 0)
	if err != nil || string(got) != string(root) {
		t.Fatalf("DownloadFile = %q, %v", got, err)
	}

	tests := []struct {
		name     string
		path     string
		max      int64
		wantHTTP int   // go-tuf's ErrDownloadHTTP status, 0 for none
		ours     error // our sentinel, reachable too
		tuf      error // go-tuf error type errors.Is must find
	}{
		{name: "next root missing (404 ends root rotation)", path: "/2.root.json", max: 1 << 10, wantHTTP: 404, tuf: &metadata.ErrDownload{}},
		{name: "forbidden", path: "/forbidden", max: 1 << 10, wantHTTP: 403, tuf: &metadata.ErrDownload{}},
		{name: "endless data", path: "/endless", max: 1 << 10, ours: ErrTooLarge, tuf: &metadata.ErrDownloadLengthMismatch{}},
		{name: "metadata over its max length", path: "/1.root.json", max: int64(len(root)) - 1, ours: ErrTooLarge, tuf: &metadata.ErrDownloadLengthMismatch{}},
		{name: "slow retrieval", path: "/drip", max: 1 << 20, ours: ErrTooSlow, tuf: &metadata.ErrDownload{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := f
			if tt.ours == ErrTooSlow {
				f = fast
			}
			_, err := f.DownloadFile(srv.URL+tt.path, tt.max, 0)
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, tt.tuf) {
				t.Errorf("err = %v, not a %T", err, tt.tuf)
			}
			if tt.ours != nil && !errors.Is(err, tt.ours) {
				t.Errorf("err = %v, want %v reachable", err, tt.ours)
			}
			if tt.wantHTTP != 0 {
				var de *metadata.ErrDownloadHTTP
				var he *HTTPError
				if !errors.As(err, &de) || de.StatusCode != tt.wantHTTP || de.URL != srv.URL+tt.path {
					t.Errorf("err = %v, want *metadata.ErrDownloadHTTP %d", err, tt.wantHTTP)
				}
				if !errors.As(err, &he) || he.StatusCode != tt.wantHTTP {
					t.Errorf("err = %v, want our *HTTPError too", err)
				}
			}
		})
	}
}

func TestTUFFetcherFileRepository(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "1.root.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	f := newTestClient(t, Options{}).TUFFetcher(t.Context(), Limits{})
	if got, err := f.DownloadFile("file://"+dir+"/1.root.json", 100, 0); err != nil || string(got) != "{}" {
		t.Fatalf("DownloadFile = %q, %v", got, err)
	}
	_, err := f.DownloadFile("file://"+dir+"/2.root.json", 100, 0)
	var de *metadata.ErrDownloadHTTP
	if !errors.As(err, &de) || de.StatusCode != http.StatusNotFound {
		t.Fatalf("missing file err = %v, want *metadata.ErrDownloadHTTP 404", err)
	}
}
