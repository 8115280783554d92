package install

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/bulwarkhq/bulwark/internal/catalog"
)

// entry is one member of a test archive.
type entry struct {
	name, body, link string
	typ              byte // tar.TypeReg when zero
	mode             int64
	size             int64 // declared size when set; body is padded with zeros
}

func tarBytes(t testing.TB, entries []entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: e.mode, Size: int64(len(e.body)), Format: tar.FormatPAX}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
			if h.Typeflag == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
		}
		body := []byte(e.body)
		if e.size > 0 {
			h.Size = e.size
			body = append(body, make([]byte, e.size-int64(len(body)))...)
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("write header %s: %v", e.name, err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zstdBytes(t testing.TB, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	zw.Write(data)
	zw.Close()
	return buf.Bytes()
}

// writePayload writes a .tar.zst of data into a new directory and returns
// its path.
func writePayload(t testing.TB, name string, tarData []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, zstdBytes(t, tarData), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func archiveUpdate(id, prefix string, payloads ...string) (*catalog.Update, map[string]string) {
	u := &catalog.Update{ID: id, Reboot: catalog.RebootNever, Installer: catalog.Installer{Type: catalog.InstallerArchive, Prefix: prefix}, Uninstallable: true}
	m := map[string]string{}
	for _, p := range payloads {
		u.Payloads = append(u.Payloads, catalog.Payload{File: filepath.Base(p)})
		m[filepath.Base(p)] = p
	}
	return u, m
}

// rawHeader is a ustar header block built by hand, for entries archive/tar
// refuses to write (bare PAX headers).
func rawHeader(name string, typ byte, size int) []byte {
	b := make([]byte, 512)
	copy(b[0:100], name)
	copy(b[100:108], "0000644\x00")
	copy(b[108:116], "0000000\x00")
	copy(b[116:124], "0000000\x00")
	copy(b[124:136], fmt.Sprintf("%011o\x00", size))
	copy(b[136:148], "00000000000\x00")
	b[156] = typ
	copy(b[257:263], "ustar\x00")
	copy(b[263:265], "00")
	for i := 148; i < 156; i++ {
		b[i] = ' '
	}
	sum := 0
	for _, c := range b {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

// paxBomb is a tar stream of n PAX extended headers of size bytes each
// before one small file: archive/tar reads them all (up to 1 MiB each) and
// hands none of them to its caller, so only a cap on the decoded stream
// stops it. It compresses to almost nothing.
func paxBomb(t testing.TB, n, size int) []byte {
	t.Helper()
	value := strings.Repeat("a", size-32)
	body := "comment=" + value + "\n"
	rec := ""
	for l := len(body) + 2; ; l++ {
		rec = fmt.Sprintf("%d %s", l, body)
		if len(rec) == l {
			break
		}
	}
	var buf bytes.Buffer
	for range n {
		buf.Write(rawHeader("PaxHeaders/bomb", tar.TypeXHeader, len(rec)))
		buf.WriteString(rec)
		buf.Write(make([]byte, (512-len(rec)%512)%512))
	}
	buf.Write(tarBytes(t, []entry{{name: "after-the-bomb", body: "x"}}))
	return buf.Bytes()
}

func TestArchiveInstallUninstall(t *testing.T) {
	ctx := context.Background()
	root, state := t.TempDir(), t.TempDir()
	data := tarBytes(t, []entry{
		{name: "./bin/", typ: tar.TypeDir},
		{name: "./bin/tool", body: "#!/bin/sh\necho v1\n", mode: 0o755},
		{name: "share/doc/README", body: "hello\n"}, // parents not in the archive
		{name: "lib/v1/libx.so", body: "ELF"},
		{name: "lib/current", typ: tar.TypeSymlink, link: "v1"},
		{name: "lib/v1/alias.so", typ: tar.TypeLink, link: "lib/v1/libx.so"},
		{name: "bin/up", typ: tar.TypeSymlink, link: "../share/doc"},
	})
	payload := writePayload(t, "tool-1.0.tar.zst", data)
	u, p := archiveUpdate("BW-TOOL", "/opt/vendor/tool", payload)
	h := handler(t, "archive", Options{})
	// Something of someone else's already in /opt/vendor.
	other := filepath.Join(root, "opt/vendor/other.conf")
	os.MkdirAll(filepath.Dir(other), 0o755)
	os.WriteFile(other, []byte("keep"), 0o644)

	res, err := h.Install(ctx, Request{Update: u, Payloads: p, Root: root, StateDir: state})
	if err != nil {
		t.Fatalf("install: %v", err)
	}
	if !strings.Contains(res.Output, "extracted") {
		t.Errorf("output = %q", res.Output)
	}
	dest := filepath.Join(root, "opt/vendor/tool")
	checks := []struct{ path, content string }{
		{"bin/tool", "#!/bin/sh\necho v1\n"},
		{"share/doc/README", "hello\n"},
		{"lib/current/libx.so", "ELF"},
		{"lib/v1/alias.so", "ELF"},
		{"bin/up/README", "hello\n"},
	}
	for _, c := range checks {
		if got := readFile(t, filepath.Join(dest, c.path)); got != c.content {
			t.Errorf("%s = %q; want %q", c.path, got, c.content)
		}
	}
	if st, _ := os.Stat(filepath.Join(dest, "bin/tool")); st.Mode().Perm() != 0o755 {
		t.Errorf("bin/tool mode %v", st.Mode())
	}
	a, _ := os.Stat(filepath.Join(dest, "lib/v1/libx.so"))
	b, _ := os.Stat(filepath.Join(dest, "lib/v1/alias.so"))
	if !os.SameFile(a, b) {
		t.Error("hardlink not preserved")
	}
	if ents, _ := os.ReadDir(filepath.Join(root, "opt/vendor")); len(ents) != 2 {
		t.Errorf("opt/vendor holds %v; want other.conf and tool, no staging left", ents)
	}
	if st, err := os.Stat(filepath.Join(state, "archive")); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("state dir: %v %v; want 0700", st, err)
	}
	if st, err := os.Stat(filepath.Join(state, "archive", "BW-TOOL.json")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("install record: %v %v; want 0600", st, err)
	}

	// Installing the same archive again changes nothing.
	before, _ := os.Stat(filepath.Join(dest, "bin/tool"))
	res, err = h.Install(ctx, Request{Update: u, Payloads: p, Root: root, StateDir: state})
	if err != nil || !strings.Contains(res.Output, "already installed") {
		t.Fatalf("second install = %+v, %v; want a no-op", res, err)
	}
	if after, _ := os.Stat(filepath.Join(dest, "bin/tool")); !os.SameFile(before, after) {
		t.Error("second install replaced bin/tool")
	}

	// A file changed since: uninstall refuses, naming it, unless forced.
	os.WriteFile(filepath.Join(dest, "share/doc/README"), []byte("edited\n"), 0o644)
	_, err = h.Uninstall(ctx, Request{Update: u, Root: root, StateDir: state})
	var f *Failure
	if !errors.As(err, &f) || !errors.Is(err, ErrChanged) || !strings.Contains(f.Reason, "share/doc/README") {
		t.Fatalf("uninstall after an edit: err = %v; want ErrChanged naming share/doc/README", err)
	}
	if _, err := os.Stat(filepath.Join(dest, "bin/tool")); err != nil {
		t.Fatal("a refused uninstall removed files")
	}
	// A reinstall repairs it.
	if _, err := h.Install(ctx, Request{Update: u, Payloads: p, Root: root, StateDir: state}); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, filepath.Join(dest, "share/doc/README")); got != "hello\n" {
		t.Errorf("reinstall did not repair README: %q", got)
	}
	os.WriteFile(filepath.Join(dest, "bin/tool"), []byte("edited"), 0o755)
	notUninstallable := *u
	notUninstallable.Uninstallable = false
	if _, err := h.Uninstall(ctx, Request{Update: &notUninstallable, Root: root, StateDir: state}); !errors.Is(err, ErrNotUninstallable) {
		t.Fatalf("err = %v; want ErrNotUninstallable", err)
	}
	if _, err := h.Uninstall(ctx, Request{Update: u, Root: root, StateDir: state, Force: true}); err != nil {
		t.Fatalf("forced uninstall: %v", err)
	}
	if _, err := os.Stat(dest); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("prefix after uninstall: %v; want it removed (the install created it)", err)
	}
	if got := readFile(t, other); got != "keep" {
		t.Errorf("someone else's file: %q", got)
	}
	if _, err := os.Stat(filepath.Join(state, "archive", "BW-TOOL.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("install record after uninstall: %v", err)
	}
	if res, err := h.Uninstall(ctx, Request{Update: u, Root: root, StateDir: state}); err != nil || !strings.Contains(res.Output, "nothing to remove") {
		t.Errorf("second uninstall = %+v, %v", res, err)
	}
}

// TestArchiveUpgradeRemovesDroppedFiles installs a new archive of the same
// update over the old one: files the new one dropped go, files someone
// else put in the prefix stay.
func TestArchiveUpgradeRemovesDroppedFiles(t *testing.T) {
	ctx := context.Background()
	root, state := t.TempDir(), t.TempDir()
	h := handler(t, "archive", Options{})
	v1 := writePayload(t, "app.tar.zst", tarBytes(t, []entry{{name: "a", body: "1"}, {name: "old", body: "1"}}))
	u, p := archiveUpdate("BW-APP", "/opt/app", v1)
	if _, err := h.Install(ctx, Request{Update: u, Payloads: p, Root: root, StateDir: state}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "opt/app/local"), []byte("mine"), 0o644)
	v2 := writePayload(t, "app.tar.zst", tarBytes(t, []entry{{name: "a", body: "2"}, {name: "new", body: "2"}}))
	p["app.tar.zst"] = v2
	if _, err := h.Install(ctx, Request{Update: u, Payloads: p, Root: root, StateDir: state}); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"a": "2", "new": "2", "local": "mine"} {
		if got := readFile(t, filepath.Join(root, "opt/app", name)); got != want {
			t.Errorf("%s = %q; want %q", name, got, want)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "opt/app/old")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("old: %v; want it removed", err)
	}
	if _, err := h.Uninstall(ctx, Request{Update: u, Root: root, StateDir: state}); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(filepath.Join(root, "opt/app")); len(ents) != 1 || ents[0].Name() != "local" {
		t.Errorf("opt/app after uninstall holds %v; want only local", ents)
	}
}

// TestArchiveAttacks: every archive here tries to write outside the prefix,
// or more than allowed, and must be refused naming the entry, leaving
// nothing behind.
func TestArchiveAttacks(t *testing.T) {
	limits := Options{MaxFiles: 10, MaxBytes: 1 << 20}
	tests := []struct {
		name    string
		data    func(t testing.TB) []byte // a tar stream
		opts    Options
		entry   string // the entry the error must name
		reason  string
		prepare func(t testing.TB, prefix string) // the machine before the install
		wantErr error
	}{
		{name: "absolute_path", entry: "/etc/cron.d/evil", reason: "absolute path",
			data: func(t testing.TB) []byte { return tarBytes(t, []entry{{name: "/etc/cron.d/evil", body: "x"}}) }},
		{name: "dot_dot", entry: "../../../etc/cron.d/evil", reason: "'..'",
			data: func(t testing.TB) []byte { return tarBytes(t, []entry{{name: "../../../etc/cron.d/evil", body: "x"}}) }},
		{name: "dot_dot_in_the_middle", entry: "bin/../../escape", reason: "'..'",
			data: func(t testing.TB) []byte { return tarBytes(t, []entry{{name: "bin/../../escape", body: "x"}}) }},
		{name: "symlink_escape", entry: "lib/evil", reason: "escapes the prefix",
			data: func(t testing.TB) []byte {
				return tarBytes(t, []entry{{name: "lib/evil", typ: tar.TypeSymlink, link: "../../../../etc"}})
			}},
		{name: "symlink_absolute", entry: "evil", reason: "absolute path",
			data: func(t testing.TB) []byte {
				return tarBytes(t, []entry{{name: "evil", typ: tar.TypeSymlink, link: "/etc/shadow"}})
			}},
		{name: "symlink_escape_through_another_link", entry: "e", reason: "after a name",
			data: func(t testing.TB) []byte {
				// d → "." is harmless; e → "d/.." is the prefix's parent.
				return tarBytes(t, []entry{{name: "d", typ: tar.TypeSymlink, link: "."}, {name: "e", typ: tar.TypeSymlink, link: "d/.."}})
			}},
		{name: "hardlink_escape", entry: "passwd", reason: "hardlink target",
			data: func(t testing.TB) []byte {
				return tarBytes(t, []entry{{name: "passwd", typ: tar.TypeLink, link: "../../../etc/passwd"}})
			}},
		{name: "hardlink_absolute", entry: "shadow", reason: "hardlink target",
			data: func(t testing.TB) []byte {
				return tarBytes(t, []entry{{name: "shadow", typ: tar.TypeLink, link: "/etc/shadow"}})
			}},
		{name: "hardlink_to_something_not_extracted", entry: "h", reason: "not a regular file earlier in the archive",
			data: func(t testing.TB) []byte {
				return tarBytes(t, []entry{{name: "h", typ: tar.TypeLink, link: "etc/shadow"}})
			}},
		{name: "hardlink_to_a_symlink", entry: "h", reason: "not a regular file",
			data: func(t testing.TB) []byte {
				return tarBytes(t, []entry{{name: "s", typ: tar.TypeSymlink, link: "x"}, {name: "h", typ: tar.TypeLink, link: "s"}})
			}},
		{name: "write_through_symlink", entry: "cfg/evil", reason: `written through symlink "cfg"`,
			data: func(t testing.TB) []byte {
				return tarBytes(t, []entry{{name: "sub/", typ: tar.TypeDir}, {name: "cfg", typ: tar.TypeSymlink, link: "sub"}, {name: "cfg/evil", body: "x"}})
			}},
		{name: "write_through_preexisting_symlink", entry: "", reason: "opt/vendor/app/lib is a symlink; refusing", wantErr: errAny,
			prepare: func(t testing.TB, prefix string) {
				os.MkdirAll(prefix, 0o755)
				if err := os.Symlink(t.TempDir(), filepath.Join(prefix, "lib")); err != nil {
					t.Fatal(err)
				}
			},
			data: func(t testing.TB) []byte { return tarBytes(t, []entry{{name: "lib/evil", body: "x"}}) }},
		{name: "replace_a_file_with_a_later_entry", entry: "bin/tool", reason: "repeats an earlier entry",
			data: func(t testing.TB) []byte {
				return tarBytes(t, []entry{{name: "bin/tool", body: "x"}, {name: "bin/tool", typ: tar.TypeSymlink, link: "../x"}})
			}},
		{name: "device_node", entry: "dev/sda", reason: "device file",
			data: func(t testing.TB) []byte { return tarBytes(t, []entry{{name: "dev/sda", typ: tar.TypeBlock}}) }},
		{name: "char_device", entry: "mem", reason: "device file",
			data: func(t testing.TB) []byte { return tarBytes(t, []entry{{name: "mem", typ: tar.TypeChar}}) }},
		{name: "fifo", entry: "pipe", reason: "fifo",
			data: func(t testing.TB) []byte { return tarBytes(t, []entry{{name: "pipe", typ: tar.TypeFifo}}) }},
		{name: "setuid", entry: "bin/su", reason: "setuid",
			data: func(t testing.TB) []byte { return tarBytes(t, []entry{{name: "bin/su", body: "x", mode: 0o4755}}) }},
		{name: "setgid_directory", entry: "shared/", reason: "setgid",
			data: func(t testing.TB) []byte {
				return tarBytes(t, []entry{{name: "shared/", typ: tar.TypeDir, mode: 0o2775}})
			}},
		{name: "size_bomb", entry: "big", reason: "size bomb",
			data: func(t testing.TB) []byte {
				return tarBytes(t, []entry{{name: "small", body: "x"}, {name: "big", size: 2 << 20}})
			}},
		{name: "too_many_files", entry: "f10", reason: "too many entries",
			data: func(t testing.TB) []byte {
				var es []entry
				for i := range 11 {
					es = append(es, entry{name: fmt.Sprintf("f%d", i), body: "x"})
				}
				return tarBytes(t, es)
			}},
		{name: "zstd_ratio_bomb", entry: "(after the start)", reason: "decompression bomb",
			data: func(t testing.TB) []byte { return paxBomb(t, 8, 512<<10) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root, state := t.TempDir(), t.TempDir()
			prefix := filepath.Join(root, "opt/vendor/app")
			if tt.prepare != nil {
				tt.prepare(t, prefix)
			}
			opts := tt.opts
			if opts.MaxFiles == 0 {
				opts = limits
			}
			raw := tt.data(t)
			payload := writePayload(t, "attack.tar.zst", raw)
			if tt.name == "zstd_ratio_bomb" {
				st, _ := os.Stat(payload)
				t.Logf("ratio bomb: %d bytes compressed, %d decoded", st.Size(), len(raw))
			}
			u, p := archiveUpdate("BW-EVIL", "/opt/vendor/app", payload)
			_, err := handler(t, "archive", opts).Install(context.Background(), Request{Update: u, Payloads: p, Root: root, StateDir: state})
			if err == nil {
				t.Fatal("attack archive installed")
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("err = %v; want the reason %q", err, tt.reason)
			}
			if tt.wantErr == nil {
				var ee *EntryError
				if !errors.Is(err, ErrUnsafeEntry) || !errors.As(err, &ee) || ee.Entry != tt.entry {
					t.Errorf("err = %v; want an EntryError (ErrUnsafeEntry) naming entry %q", err, tt.entry)
				}
			}
			// Nothing written anywhere but the prefix's parent stays empty,
			// and no staging directory is left.
			filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() && d.Type()&fs.ModeSymlink == 0 {
					t.Errorf("file left after a refused archive: %s", p)
				}
				if err == nil && strings.Contains(d.Name(), stagingPrefix) {
					t.Errorf("staging left: %s", p)
				}
				return nil
			})
			if tt.wantErr == nil {
				if _, err := os.Stat(prefix); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("prefix created by a refused archive: %v", err)
				}
				if _, err := os.Stat(filepath.Join(state, "archive", "BW-EVIL.json")); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("install record written for a refused archive: %v", err)
				}
			}
		})
	}
}

// errAny marks attack rows refused outside extraction (no EntryError).
var errAny = errors.New("any error")

func TestArchiveSetuidAllowed(t *testing.T) {
	root := t.TempDir()
	payload := writePayload(t, "su.tar.zst", tarBytes(t, []entry{{name: "bin/su", body: "x", mode: 0o4755}}))
	u, p := archiveUpdate("BW-SU", "/opt/su", payload)
	if _, err := handler(t, "archive", Options{AllowSetuid: true}).Install(context.Background(), Request{Update: u, Payloads: p, Root: root, StateDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(filepath.Join(root, "opt/su/bin/su")); st.Mode()&fs.ModeSetuid == 0 {
		t.Errorf("mode %v; want setuid kept when allowed", st.Mode())
	}
}

func TestArchiveBadRequests(t *testing.T) {
	payload := writePayload(t, "a.tar.zst", tarBytes(t, []entry{{name: "a", body: "x"}}))
	notZstd := filepath.Join(t.TempDir(), "plain.tar.zst")
	os.WriteFile(notZstd, tarBytes(t, []entry{{name: "a", body: "x"}}), 0o644)
	tests := []struct {
		name, prefix, file, path, want string
	}{
		{"relative_prefix", "opt/x", "a.tar.zst", payload, `prefix "opt/x"`},
		{"root_prefix", "/", "a.tar.zst", payload, `prefix "/"`},
		{"unclean_prefix", "/opt/../etc", "a.tar.zst", payload, `prefix "/opt/../etc"`},
		{"not_tar_zst", "/opt/x", "a.tgz", payload, "takes only .tar.zst"},
		{"not_zstd", "/opt/x", "plain.tar.zst", notZstd, "zstd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := &catalog.Update{ID: "BW-A", Installer: catalog.Installer{Type: "archive", Prefix: tt.prefix}, Payloads: []catalog.Payload{{File: tt.file}}}
			_, err := handler(t, "archive", Options{}).Install(context.Background(), Request{Update: u, Payloads: map[string]string{tt.file: tt.path}, Root: t.TempDir(), StateDir: t.TempDir()})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v; want one containing %q", err, tt.want)
			}
		})
	}
}

func TestCheckSymlink(t *testing.T) {
	tests := []struct {
		name, target string
		ok           bool
	}{
		{"a", "b", true},
		{"a/b", "../c", true},
		{"a/b/c", "../../d/e", true},
		{"a/b", "./c/./d", true},
		{"a", "../x", false},
		{"a/b", "../../x", false},
		{"a/b", "c/../../x", false},
		{"a", "c/..", false},
		{"a", "/etc", false},
		{"a", "", false},
	}
	for _, tt := range tests {
		if err := checkSymlink(tt.name, tt.target); (err == nil) != tt.ok {
			t.Errorf("checkSymlink(%q, %q) = %v; want ok=%v", tt.name, tt.target, err, tt.ok)
		}
	}
}

// FuzzExtract feeds arbitrary bytes to the archive reader, both as a tar
// stream and as a zstd stream, and checks that whatever it accepts stays
// inside the staging directory: nothing written next to it, every symlink
// resolving inside it, no device, fifo or setuid file.
func FuzzExtract(f *testing.F) {
	seeds := [][]byte{
		tarBytes(f, []entry{{name: "a/b", body: "x"}, {name: "l", typ: tar.TypeSymlink, link: "a/b"}, {name: "h", typ: tar.TypeLink, link: "a/b"}}),
		tarBytes(f, []entry{{name: "../x", body: "x"}}),
		tarBytes(f, []entry{{name: "d", typ: tar.TypeSymlink, link: "."}, {name: "e", typ: tar.TypeSymlink, link: "d/.."}}),
		tarBytes(f, []entry{{name: "s", typ: tar.TypeDir}, {name: "c", typ: tar.TypeSymlink, link: "s"}, {name: "c/x", body: "y"}}),
		tarBytes(f, []entry{{name: "dev", typ: tar.TypeChar}}),
	}
	for _, s := range seeds {
		f.Add(s, false)
		f.Add(zstdBytes(f, s), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, compressed bool) {
		dir := t.TempDir()
		staging := filepath.Join(dir, "stage")
		if err := os.Mkdir(staging, 0o700); err != nil {
			t.Fatal(err)
		}
		x := &extractor{maxFiles: 50, maxBytes: 1 << 20, seen: map[string]*fileRecord{}}
		var err error
		if compressed {
			err = x.extractZstd(bytes.NewReader(data), "fuzz", staging)
		} else {
			err = x.extract(bytes.NewReader(data), "fuzz", staging)
		}
		ents, _ := os.ReadDir(dir)
		if len(ents) != 1 {
			t.Fatalf("extraction wrote next to staging: %v", ents)
		}
		if err != nil {
			return
		}
		stagingReal, _ := filepath.EvalSymlinks(staging)
		filepath.WalkDir(staging, func(p string, d fs.DirEntry, werr error) error {
			if werr != nil {
				return nil
			}
			info, _ := d.Info()
			switch {
			case d.Type()&fs.ModeSymlink != 0:
				if real, err := filepath.EvalSymlinks(p); err == nil && real != stagingReal && !strings.HasPrefix(real, stagingReal+"/") {
					t.Fatalf("symlink %s resolves outside staging: %s", p, real)
				}
			case d.Type()&(fs.ModeDevice|fs.ModeNamedPipe|fs.ModeSocket|fs.ModeCharDevice) != 0:
				t.Fatalf("special file %s extracted", p)
			case info != nil && info.Mode()&(fs.ModeSetuid|fs.ModeSetgid) != 0:
				t.Fatalf("setuid/setgid %s extracted", p)
			}
			return nil
		})
	})
}

// TestArchiveInterruptedInstall: a crash while files were being moved into
// place leaves a record in state "installing" and some files missing; the
// next install finishes the job, and uninstall removes what is there
// without calling the missing files changes.
func TestArchiveInterruptedInstall(t *testing.T) {
	ctx := context.Background()
	root, state := t.TempDir(), t.TempDir()
	h := handler(t, "archive", Options{})
	payload := writePayload(t, "app.tar.zst", tarBytes(t, []entry{{name: "a/one", body: "1"}, {name: "b/two", body: "2"}}))
	u, p := archiveUpdate("BW-CRASH", "/opt/crash", payload)
	recPath := filepath.Join(state, "archive", "BW-CRASH.json")
	interrupt := func() {
		t.Helper()
		b := readFile(t, recPath)
		if !strings.Contains(b, `"state": "installed"`) || !strings.Contains(b, `"a"`) {
			t.Fatalf("record before the simulated crash: %s", b)
		}
		os.WriteFile(recPath, []byte(strings.Replace(b, `"state": "installed"`, `"state": "installing"`, 1)), 0o600)
		os.RemoveAll(filepath.Join(root, "opt/crash/b"))
	}
	if _, err := h.Install(ctx, Request{Update: u, Payloads: p, Root: root, StateDir: state}); err != nil {
		t.Fatal(err)
	}
	interrupt()
	res, err := h.Install(ctx, Request{Update: u, Payloads: p, Root: root, StateDir: state})
	if err != nil || strings.Contains(res.Output, "already installed") {
		t.Fatalf("install after the crash = %+v, %v; want it to extract again", res, err)
	}
	if got := readFile(t, filepath.Join(root, "opt/crash/b/two")); got != "2" {
		t.Errorf("b/two = %q", got)
	}
	interrupt()
	if _, err := h.Uninstall(ctx, Request{Update: u, Root: root, StateDir: state}); err != nil {
		t.Fatalf("uninstall after the crash: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "opt/crash")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("prefix after uninstall: %v", err)
	}
}
