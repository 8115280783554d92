package media

import (
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bulwarkhq/bulwark/internal/debtest"
	"github.com/bulwarkhq/bulwark/internal/tuf"
)

// binRepo is a vendor repository with 256 hashed bins (so loadRepo
// verifies them with several workers) and one published update, and the
// names of its bin files in role order.
func binRepo(t *testing.T) (dir string, root []byte, bins []string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "vendor")
	r, err := tuf.Init(dir, tuf.InitOptions{Name: "debian", BinBits: 8}, tuf.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	f := &fixture{t: t, tmp: t.TempDir(), vendor: dir, vendorR: r}
	f.publish("BW-9", debtest.Package{Name: "libnine", Version: "9.0", Files: map[string]string{"/usr/lib/libnine.txt": "9\n"}}, "classification: security\nreboot: never\n")
	root, err = os.ReadFile(filepath.Join(dir, tuf.MetadataDir, "1.root.json"))
	if err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(filepath.Join(dir, tuf.MetadataDir))
	if err != nil {
		t.Fatal(err)
	}
	// The current version of each bin (a bin the update went into has
	// two).
	cur := map[string]string{}
	version := func(file string) int {
		v, _ := strconv.Atoi(file[:strings.Index(file, ".")])
		return v
	}
	for _, e := range ents {
		if n := e.Name(); strings.Contains(n, ".bins-") && (cur[binRole(n)] == "" || version(n) > version(cur[binRole(n)])) {
			cur[binRole(n)] = n
		}
	}
	for _, n := range cur {
		bins = append(bins, n)
	}
	// Role order: bins-00 … bins-ff, whatever each one's version.
	slices.SortFunc(bins, func(a, b string) int { return strings.Compare(binRole(a), binRole(b)) })
	if len(bins) != 256 {
		t.Fatalf("%d bins, want 256", len(bins))
	}
	return dir, root, bins
}

func binRole(file string) string { return file[strings.Index(file, ".")+1:] }

func TestLoadRepoVerifiesEveryBinInParallel(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		t.Log("one core: the bins are verified by one worker")
	}
	dir, root, bins := binRepo(t)
	st, err := loadRepo(dir, "", root, freshness{now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bins {
		if !slices.Contains(st.meta, b) {
			t.Errorf("bin %s not among the verified metadata", b)
		}
		want, _ := os.ReadFile(filepath.Join(dir, tuf.MetadataDir, b))
		if string(st.metaBytes[b]) != string(want) {
			t.Errorf("bin %s: the bytes kept are not the file's", b)
		}
	}
	if !slices.IsSorted(st.meta) {
		t.Error("metadata names not sorted")
	}
	if st.targets["updates/BW-9/update.json"] == nil {
		t.Errorf("the update signed in a bin is not among the targets (%d targets)", len(st.targets))
	}
}

// TestAttackTamperedBinRefused: a hashed bin whose signed part was changed
// (here: its expiry pushed out, which would keep a withheld bin alive) is
// refused, naming the bin; with two bins changed, verified by different
// workers, the error always names the first one in role order.
func TestAttackTamperedBinRefused(t *testing.T) {
	dir, root, bins := binRepo(t)
	tamper := func(name string) {
		p := filepath.Join(dir, tuf.MetadataDir, name)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		i := strings.Index(string(b), `"expires":"`)
		if i < 0 {
			t.Fatalf("%s: no expires field", name)
		}
		i += len(`"expires":"`)
		b[i+3]++ // the year's last digit
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tamper(bins[2])
	tamper(bins[1])
	for range 5 {
		_, err := loadRepo(dir, "", root, freshness{now: time.Now()})
		if err == nil {
			t.Fatal("a repository with tampered bins verified")
		}
		if want := "metadata/" + bins[1]; !strings.HasPrefix(err.Error(), want+": ") {
			t.Fatalf("error %q: want it to name %s, the first tampered bin", err, want)
		}
	}
}
