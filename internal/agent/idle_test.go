package agent

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// exeRSS is the resident KiB of this process's mappings of its executable.
func exeRSS(t *testing.T) int64 {
	t.Helper()
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	ours := false
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":"):
			ours = len(f) >= 6 && f[5] == exe
		case ours && len(f) >= 2 && f[0] == "Rss:":
			n, _ := strconv.ParseInt(f[1], 10, 64)
			total += n
		}
	}
	return total
}

// TestReleaseIdleMemoryPagesOutTheExecutable: before idling, the pages of
// the executable that were touched leave the resident set.
func TestReleaseIdleMemoryPagesOutTheExecutable(t *testing.T) {
	before := exeRSS(t)
	if before < 1024 {
		t.Fatalf("only %d KiB of the test binary resident; nothing to measure", before)
	}
	ReleaseIdleMemory()
	after := exeRSS(t)
	t.Logf("executable resident: %d KiB before, %d KiB after", before, after)
	if after > before/2 {
		t.Errorf("executable resident %d KiB after ReleaseIdleMemory, was %d KiB: not paged out", after, before)
	}
}
