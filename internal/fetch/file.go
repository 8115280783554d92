package fetch

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/bulwarkhq/bulwark/internal/atomicfile"
)

// Want is what a downloaded file must be: Length and at least one hash.
// Every hash given is checked (TUF: every listed hash of a supported
// algorithm must match).
type Want struct {
	Length int64
	SHA256 string // lowercase hex, or "" when not listed
	SHA512 string // lowercase hex, or "" when not listed
}

func (w Want) validate() error {
	if w.Length < 0 {
		return &InputError{"Want.Length", strconv.FormatInt(w.Length, 10), "the file's length in bytes (0 or more)"}
	}
	if w.SHA256 == "" && w.SHA512 == "" {
		return &InputError{"Want.SHA256", `""`, "64 lowercase hex digits (or a Want.SHA512)"}
	}
	for _, h := range []struct {
		name, v string
		n       int
	}{{"Want.SHA256", w.SHA256, 64}, {"Want.SHA512", w.SHA512, 128}} {
		if h.v == "" {
			continue
		}
		valid := fmt.Sprintf("%d lowercase hex digits", h.n)
		if len(h.v) != h.n {
			return &InputError{h.name, strconv.Quote(truncate(h.v, 140)), valid}
		}
		for i := 0; i < len(h.v); i++ {
			if ch := h.v[i]; !('0' <= ch && ch <= '9' || 'a' <= ch && ch <= 'f') {
				return &InputError{h.name, strconv.Quote(h.v), valid}
			}
		}
	}
	return nil
}

// Check reports whether b has exactly w's length and every hash it lists,
// for bytes already in memory (metadata-sized targets).
func (w Want) Check(b []byte) error {
	if err := w.validate(); err != nil {
		return err
	}
	if int64(len(b)) != w.Length {
		return fmt.Errorf("%d bytes, want %d: %w", len(b), w.Length, ErrLengthMismatch)
	}
	h := newHasher(w)
	h.Write(b)
	if m := h.mismatch(); m != "" {
		return fmt.Errorf("%s: %w", m, ErrHashMismatch)
	}
	return nil
}

// hasher hashes the bytes of a download with every algorithm Want lists.
type hasher struct {
	want   Want
	sha256 hash.Hash // nil when not wanted
	sha512 hash.Hash
}

func newHasher(w Want) *hasher {
	h := &hasher{want: w}
	if w.SHA256 != "" {
		h.sha256 = sha256.New()
	}
	if w.SHA512 != "" {
		h.sha512 = sha512.New()
	}
	return h
}

func (h *hasher) Write(p []byte) (int, error) {
	if h.sha256 != nil {
		h.sha256.Write(p)
	}
	if h.sha512 != nil {
		h.sha512.Write(p)
	}
	return len(p), nil
}

func (h *hasher) Reset() {
	if h.sha256 != nil {
		h.sha256.Reset()
	}
	if h.sha512 != nil {
		h.sha512.Reset()
	}
}

// mismatch describes the first wanted hash the bytes do not have, or "".
func (h *hasher) mismatch() string {
	if h.sha256 != nil {
		if got := hex.EncodeToString(h.sha256.Sum(nil)); got != h.want.SHA256 {
			return fmt.Sprintf("sha256 %s, want %s", got, h.want.SHA256)
		}
	}
	if h.sha512 != nil {
		if got := hex.EncodeToString(h.sha512.Sum(nil)); got != h.want.SHA512 {
			return fmt.Sprintf("sha512 %s, want %s", got, h.want.SHA512)
		}
	}
	return ""
}

// FileOptions tune File.
type FileOptions struct {
	Limits Limits
	// Progress, if set, is called as bytes arrive (at most every
	// progressEvery, plus once at the end) with the bytes on disk so far and
	// Want.Length.
	Progress func(done, total int64)
	// Mode is Foreground (the default: only Options.Limiter slows the
	// download) or Background (also yield to other traffic on the link).
	Mode Mode
	// Background tunes Background mode; ignored in Foreground mode.
	Background BackgroundOptions
	// Pacer, if set, is shared by the Background downloads given it (the
	// payloads of one cycle), which then start at the rate the previous
	// ones found; nil gives each download its own (NewPacer).
	Pacer *Pacer
	// NoSync skips the fsyncs of the finished file and its directory, for a
	// caller that downloads many files and flushes the filesystem once
	// before anything refers to them (a sync of thousands of targets). After
	// a power loss such a file can have the right size and wrong bytes, so
	// the caller must verify files it finds rather than trust their size.
	NoSync bool
}

const progressEvery = 100 * time.Millisecond

// Suffixes of the files File keeps next to dst while downloading.
const (
	PartialSuffix = ".partial"
	MetaSuffix    = ".partial.meta"
)

// maxMeta caps the sidecar file read back from disk.
const maxMeta = 4 << 10

// partialMeta is the sidecar that lets a later File call resume dst.partial:
// which URL and which wanted file the bytes belong to and the validator for
// If-Range.
type partialMeta struct {
	Version   int    `json:"version"`
	URL       string `json:"url"`
	Length    int64  `json:"length"`
	SHA256    string `json:"sha256"`
	SHA512    string `json:"sha512,omitempty"`
	Validator string `json:"validator,omitempty"`
}

const metaVersion = 1

// File downloads url to dst, which ends up with exactly want's length and
// hashes or is not touched. Bytes stream through one fixed buffer into
// dst+".partial" (mode 0600) and are hashed as they are written; a later call
// resumes a partial file with Range and If-Range. A dst that already matches
// want is kept without a request. A source with more bytes than want.Length
// fails with ErrTooLarge as soon as the excess arrives; a short or wrong file
// fails with ErrLengthMismatch or ErrHashMismatch. A partial file is kept
// for a later resume only when it holds bytes and the download was
// interrupted (ErrTooSlow, ErrTimeout, a cancellation, a cut connection);
// after any other failure nothing is left next to dst.
func (c *Client) File(ctx context.Context, url, dst string, want Want, opts FileOptions) error {
	if err := want.validate(); err != nil {
		return err
	}
	lim, err := opts.Limits.withDefaults(0)
	if err != nil {
		return err
	}
	if lim.MaxBytes > 0 && want.Length > lim.MaxBytes {
		return fmt.Errorf("fetch %s: wanted length %d exceeds Limits.MaxBytes %d: %w", url, want.Length, lim.MaxBytes, ErrTooLarge)
	}
	src, err := parseSource(url)
	if err != nil {
		return err
	}
	if dst == "" {
		return &InputError{"dst", `""`, "a file path"}
	}
	var bo BackgroundOptions
	switch opts.Mode {
	case Foreground:
	case Background:
		if bo, err = opts.Background.withDefaults(lim); err != nil {
			return err
		}
	default:
		return &InputError{"FileOptions.Mode", opts.Mode.String(), "Foreground (0) or Background (1)"}
	}
	d := &download{
		c:        c,
		src:      src,
		dst:      dst,
		partial:  dst + PartialSuffix,
		metaPath: dst + MetaSuffix,
		want:     want,
		lim:      lim,
		progress: opts.Progress,
		noSync:   opts.NoSync,
		buf:      make([]byte, copyBuf),
		h:        newHasher(want),
	}
	if ok, err := d.dstComplete(); err != nil || ok {
		if ok {
			d.report(want.Length, true)
		}
		return err
	}
	ctx, cancel := opContext(ctx, lim)
	defer cancel()
	d.hc = c.hc
	if opts.Mode == Background && src.path == "" {
		p, stop := c.startPacer(ctx, src, bo, opts.Pacer)
		defer stop()
		d.hc, d.pace = c.bghc, p
	}
	return d.run(ctx)
}

// download is the state of one File call.
type download struct {
	c                      *Client
	hc                     *http.Client
	pace                   *Pacer // nil in Foreground mode
	src                    *source
	dst, partial, metaPath string
	want                   Want
	lim                    Limits
	progress               func(done, total int64)
	lastReport             time.Time
	buf                    []byte
	h                      *hasher
	f                      *os.File
	n                      int64 // bytes in f, all hashed into h
	validator              string
	noSync                 bool
}

// dstComplete reports whether dst already holds the wanted file.
func (d *download) dstComplete() (bool, error) {
	f, err := os.Open(d.dst)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("check existing %s: %w", d.dst, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() || fi.Size() != d.want.Length {
		return false, nil
	}
	h := newHasher(d.want)
	if _, err := io.CopyBuffer(h, io.LimitReader(f, d.want.Length), d.buf); err != nil {
		return false, fmt.Errorf("check existing %s: %w", d.dst, err)
	}
	return h.mismatch() == "", nil
}

func (d *download) run(ctx context.Context) (err error) {
	defer func() {
		if d.f != nil {
			d.f.Close()
		}
		// Only bytes an interrupted download can resume from stay behind;
		// any other failure leaves nothing next to dst.
		if err != nil && (d.n == 0 || !resumable(err)) {
			os.Remove(d.partial)
			os.Remove(d.metaPath)
		}
	}()
	if err := d.openPartial(); err != nil {
		return err
	}
	// A partial file that is already complete (a crash before the rename)
	// needs no request.
	for attempt := 1; d.n == 0 || d.n < d.want.Length; attempt++ {
		err := d.attempt(ctx)
		if err == nil {
			break
		}
		if errors.Is(err, errRestart) && attempt < maxAttempts {
			d.c.log.Info("source cannot resume; starting over", "url", d.src.name, "err", err)
			if err := d.restart(); err != nil {
				return err
			}
			continue
		}
		if !retryable(err) || attempt == maxAttempts {
			return err
		}
		d.c.log.Warn("download interrupted; resuming", "url", d.src.name, "have", d.n, "attempt", attempt, "err", err)
		if werr := sleepBackoff(ctx, attempt); werr != nil {
			return fmt.Errorf("%w (after %v)", werr, err)
		}
	}
	return d.finish()
}

// openPartial opens or creates dst.partial and rehashes what it holds, if
// the sidecar says it belongs to this URL and this wanted file.
func (d *download) openPartial() error {
	f, err := os.OpenFile(d.partial, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open partial download: %w", err)
	}
	d.f = f
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("open partial download: %w", err)
	}
	meta, ok := readMeta(d.metaPath)
	if fi.Size() == 0 || !ok || meta.URL != d.src.u.String() || meta.Length != d.want.Length ||
		meta.SHA256 != d.want.SHA256 || meta.SHA512 != d.want.SHA512 || fi.Size() > d.want.Length {
		return d.restart()
	}
	if _, err := io.CopyBuffer(d.h, io.LimitReader(f, fi.Size()), d.buf); err != nil {
		return fmt.Errorf("rehash partial download: %w", err)
	}
	d.n, d.validator = fi.Size(), meta.Validator
	if d.n == d.want.Length && d.h.mismatch() != "" {
		return d.restart() // complete but wrong: fetch it again rather than fail
	}
	d.c.log.Info("resuming download", "url", d.src.name, "have", d.n, "want", d.want.Length)
	return nil
}

// restart empties the partial file.
func (d *download) restart() error {
	if err := d.f.Truncate(0); err != nil {
		return fmt.Errorf("truncate partial download: %w", err)
	}
	if _, err := d.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("truncate partial download: %w", err)
	}
	d.h.Reset()
	d.n, d.validator = 0, ""
	return nil
}

func readMeta(path string) (partialMeta, bool) {
	var m partialMeta
	f, err := os.Open(path)
	if err != nil {
		return m, false
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxMeta+1))
	if err != nil || len(b) > maxMeta {
		return m, false
	}
	return decodeMeta(b)
}

func decodeMeta(b []byte) (partialMeta, bool) {
	var m partialMeta
	if err := json.Unmarshal(b, &m); err != nil || m.Version != metaVersion {
		return partialMeta{}, false
	}
	return m, true
}

func (d *download) writeMeta() error {
	b, err := json.Marshal(partialMeta{
		Version: metaVersion, URL: d.src.u.String(), Length: d.want.Length, SHA256: d.want.SHA256, SHA512: d.want.SHA512, Validator: d.validator,
	})
	if err != nil {
		return fmt.Errorf("encode partial download state: %w", err)
	}
	write := atomicfile.WriteFile
	if d.noSync {
		write = atomicfile.WriteFileUnsynced
	}
	if err := write(d.metaPath, b, 0o600); err != nil {
		return fmt.Errorf("save partial download state: %w", err)
	}
	return nil
}

// attempt does one request and appends what it gets to the partial file.
func (d *download) attempt(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	m := new(meter)
	stop := d.c.watch(ctx, cancel, m, d.lim)
	defer stop()

	ifRange := d.validator
	r, err := d.c.open(ctx, d.hc, d.src, d.n, ifRange, true)
	if err != nil {
		return attemptFailure(ctx, err)
	}
	defer r.body.Close()
	if r.offset != d.n {
		// The source sent the whole file (it ignored Range, or If-Range
		// found a different version).
		d.c.log.Info("source sent the whole file; starting over", "url", d.src.name, "had", d.n)
		if err := d.restart(); err != nil {
			return err
		}
	}
	if r.total > d.want.Length || (r.total < 0 && r.length >= 0 && r.offset+r.length > d.want.Length) {
		return fmt.Errorf("fetch %s: source declares %d bytes, want %d: %w", d.src.name, max(r.total, r.offset+r.length), d.want.Length, ErrTooLarge)
	}
	if r.validator != d.validator || d.n == 0 {
		d.validator = r.validator
		if err := d.writeMeta(); err != nil {
			return err
		}
	}
	body := &meteredReader{ctx: ctx, r: r.body, lim: d.c.limiter, pace: d.pace, m: m, now: d.c.now}
	for {
		k, rerr := body.Read(d.buf)
		if k > 0 {
			if d.n+int64(k) > d.want.Length {
				return fmt.Errorf("fetch %s: more than the wanted %d bytes: %w", d.src.name, d.want.Length, ErrTooLarge)
			}
			if _, err := d.f.Write(d.buf[:k]); err != nil {
				return fmt.Errorf("write partial download: %w", err)
			}
			d.h.Write(d.buf[:k])
			d.n += int64(k)
			d.report(d.n, false)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return attemptFailure(ctx, transient(fmt.Errorf("fetch %s: read body at byte %d: %w", d.src.name, d.n, rerr)))
		}
	}
	if d.n < d.want.Length {
		if r.length < 0 {
			// Without a declared length a cut connection looks like an
			// ordinary end; resume to find out.
			return transient(fmt.Errorf("fetch %s: body ended at byte %d of %d without a declared length", d.src.name, d.n, d.want.Length))
		}
		return fmt.Errorf("fetch %s: source has %d bytes, want %d: %w", d.src.name, r.offset+r.length, d.want.Length, ErrLengthMismatch)
	}
	return nil
}

// finish verifies the partial file and moves it to dst.
func (d *download) finish() error {
	if d.n != d.want.Length {
		return fmt.Errorf("fetch %s: got %d bytes, want %d: %w", d.src.name, d.n, d.want.Length, ErrLengthMismatch)
	}
	if m := d.h.mismatch(); m != "" {
		return fmt.Errorf("fetch %s: %s: %w", d.src.name, m, ErrHashMismatch)
	}
	if !d.noSync {
		if err := d.f.Sync(); err != nil {
			return fmt.Errorf("sync download: %w", err)
		}
	}
	err := d.f.Close()
	d.f = nil
	if err != nil {
		return fmt.Errorf("close download: %w", err)
	}
	if err := os.Rename(d.partial, d.dst); err != nil {
		return fmt.Errorf("install download: %w", err)
	}
	if err := os.Remove(d.metaPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		d.c.log.Warn("remove partial download state", "path", d.metaPath, "err", err)
	}
	if !d.noSync {
		if err := atomicfile.SyncDir(filepath.Dir(d.dst)); err != nil {
			return err
		}
	}
	d.report(d.n, true)
	return nil
}

func (d *download) report(done int64, final bool) {
	if d.progress == nil {
		return
	}
	now := d.c.now()
	if !final && now.Sub(d.lastReport) < progressEvery {
		return
	}
	d.lastReport = now
	d.progress(done, d.want.Length)
}
