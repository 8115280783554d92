package media

import (
	"fmt"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// startWriteback asks the kernel to start writing f's dirty pages to disk
// now, without waiting for them: the disk works while the CPU copies,
// hashes and makes the image, and the fsync at the end finds the data
// there. Only a hint: the fsync is what makes the data durable.
func startWriteback(f *os.File) {
	unix.SyncFileRange(int(f.Fd()), 0, 0, unix.SYNC_FILE_RANGE_WRITE)
}

// writebackWhileWritten starts the writeback of what another process
// (xorriso) has written to f so far, every interval, until stop is closed.
func writebackWhileWritten(f *os.File, interval time.Duration, stop <-chan struct{}) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			startWriteback(f)
		}
	}
}

// flusher fsyncs files in the background as they are finished, with
// several goroutines that wait for the disk while the CPU goes on copying
// and hashing (their writeback started when they were written).
type flusher struct {
	ch   chan string
	wg   sync.WaitGroup
	once sync.Once
	mu   sync.Mutex
	err  error
}

// newFlusher starts a flusher for up to n files: adding one never waits.
func newFlusher(n int) *flusher {
	f := &flusher{ch: make(chan string, n)}
	for range 8 {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			for p := range f.ch {
				if err := syncFile(p); err != nil {
					f.mu.Lock()
					if f.err == nil {
						f.err = fmt.Errorf("flush %s: %w", p, err)
					}
					f.mu.Unlock()
				}
			}
		}()
	}
	return f
}

// add queues the file at p to be flushed.
func (f *flusher) add(p string) { f.ch <- p }

// wait waits until every file added is flushed, and returns the first
// error. No file may be added after.
func (f *flusher) wait() error {
	f.once.Do(func() { close(f.ch) })
	f.wg.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}
