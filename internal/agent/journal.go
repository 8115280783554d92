package agent

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// A journal is an append-only file of JSON lines, each fsynced before the
// step it records goes on. A crash can tear only the last line, which
// reading drops. The install pass and the report queue both use one.
type journal struct {
	path string
	f    *os.File
}

// maxJournalLine caps one line; longer lines are a corrupt journal.
const maxJournalLine = 1 << 20

// openJournal opens (creating) a journal and returns the records in it,
// decoded one by one with decode. A torn last line is dropped and truncated
// away, so appends start on a line of their own.
func openJournal(path string, decode func(line []byte) error) (*journal, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	r := bufio.NewReaderSize(f, 64<<10)
	var good int64
	for {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// Read the rest of an overlong line to find its end.
			var buf bytes.Buffer
			buf.Write(line)
			for errors.Is(err, bufio.ErrBufferFull) && buf.Len() <= maxJournalLine {
				line, err = r.ReadSlice('\n')
				buf.Write(line)
			}
			if buf.Len() > maxJournalLine {
				f.Close()
				return nil, fmt.Errorf("journal %s: a line longer than %d bytes at offset %d", path, maxJournalLine, good)
			}
			line = buf.Bytes()
		}
		if err == io.EOF {
			break // a torn last line (or none)
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("read journal %s: %w", path, err)
		}
		if derr := decode(bytes.TrimSuffix(line, []byte("\n"))); derr != nil {
			f.Close()
			return nil, fmt.Errorf("journal %s at offset %d: %w", path, good, derr)
		}
		good += int64(len(line))
	}
	if err := f.Truncate(good); err != nil {
		f.Close()
		return nil, fmt.Errorf("journal %s: %w", path, err)
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	return &journal{path: path, f: f}, nil
}

// append writes one record and fsyncs it.
func (j *journal) append(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := j.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("append to journal %s: %w", j.path, err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("sync journal %s: %w", j.path, err)
	}
	return nil
}

func (j *journal) close() error { return j.f.Close() }

// passEntry is one line of the install journal.
type passEntry struct {
	Pass   string    `json:"pass"`
	Time   time.Time `json:"time"`
	Key    string    `json:"key,omitempty"` // vendor/id; empty for pass begin/end
	Op     string    `json:"op"`            // pass, install, uninstall, reboot
	Phase  string    `json:"phase"`         // begin, done, failed
	Reason string    `json:"reason,omitempty"`
	Reboot bool      `json:"reboot,omitempty"` // the step needs a reboot to finish
}

func decodeStrict(line []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
