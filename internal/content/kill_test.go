package content_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/content"
	"github.com/bulwarkhq/bulwark/internal/content/s3test"
)

// blockingReader gives n bytes, says so on stdout, then blocks: the
// uploading process is killed while its upload is open.
type blockingReader struct {
	data []byte
	off  int
}

func (b *blockingReader) Read(p []byte) (int, error) {
	if b.off == len(b.data) {
		fmt.Println("SENT")
		select {}
	}
	n := copy(p, b.data[b.off:])
	b.off += n
	return n, nil
}

// TestPutKillHelper is the uploading process of TestPutSurvivesKill.
func TestPutKillHelper(t *testing.T) {
	kind := os.Getenv("BULWARK_PUT_HELPER")
	if kind == "" {
		t.Skip("run by TestPutSurvivesKill")
	}
	var st content.Store
	var err error
	if kind == "dir" {
		st, err = content.OpenDir(os.Getenv("BULWARK_PUT_DIR"))
	} else {
		st, err = content.OpenS3(context.Background(), content.S3Config{URL: os.Getenv("BULWARK_PUT_URL"), Endpoint: os.Getenv("BULWARK_PUT_ENDPOINT"),
			AccessKeyID: os.Getenv("BULWARK_PUT_KEY"), SecretAccessKey: os.Getenv("BULWARK_PUT_SECRET")})
	}
	if err != nil {
		t.Fatal(err)
	}
	// 20 MiB of a 40 MiB object: S3 has a part stored when the kill comes.
	data := pattern(20 << 20)
	t.Fatal(st.Put(context.Background(), "example/targets/killed", &blockingReader{data: data}, 40<<20))
}

// TestPutSurvivesKill: the process uploading an object is killed with
// SIGKILL in the middle of the upload (half the bytes sent, the rest never
// coming). Nothing is visible under the key, listing does not show it, and
// the next upload (what the next sync does) stores it whole.
func TestPutSurvivesKill(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "content")
	d, err := content.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	vg := s3test.Start(t)
	cfg := vg.Bucket(t, "killtest", "p")
	s3, err := content.OpenS3(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		kind string
		st   content.Store
		env  []string
	}{
		{"dir", d, []string{"BULWARK_PUT_DIR=" + dir}},
		{"s3", s3, []string{"BULWARK_PUT_URL=" + cfg.URL, "BULWARK_PUT_ENDPOINT=" + cfg.Endpoint, "BULWARK_PUT_KEY=" + cfg.AccessKeyID, "BULWARK_PUT_SECRET=" + cfg.SecretAccessKey}},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestPutKillHelper$", "-test.v")
			cmd.Env = append(append(os.Environ(), "BULWARK_PUT_HELPER="+tc.kind), tc.env...)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			sent := make(chan bool, 1)
			go func() {
				sc := bufio.NewScanner(out)
				for sc.Scan() {
					if strings.Contains(sc.Text(), "SENT") {
						sent <- true
						break
					}
				}
				io.Copy(io.Discard, out)
			}()
			select {
			case <-sent:
			case <-time.After(2 * time.Minute):
				cmd.Process.Kill()
				t.Fatal("the uploading process never sent half the object")
			}
			time.Sleep(300 * time.Millisecond) // the bytes reach the store
			cmd.Process.Kill()
			cmd.Wait()
			missing(t, tc.st, "example/targets/killed", "after the uploader was killed")
			ls, err := tc.st.List(ctx, "example/")
			if err != nil {
				t.Fatal(err)
			}
			if len(ls) != 0 {
				t.Fatalf("listed after the kill: %+v", ls)
			}
			data := pattern(40 << 20)
			if err := tc.st.Put(ctx, "example/targets/killed", bytes.NewReader(data), int64(len(data))); err != nil {
				t.Fatal(err)
			}
			if got := get(t, tc.st, "example/targets/killed"); !bytes.Equal(got, data) {
				t.Fatal("the upload after the kill differs")
			}
		})
	}
}
