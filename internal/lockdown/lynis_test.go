package lockdown

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// lynisGoal is the hardening index issue 12 asks for after sysadmin.
const lynisGoal = 80

// TestDebianRootLynis applies sysadmin to a copy of the Debian root and runs
// the real Lynis (the machine's, 3.0.8 on Debian 12; scripts/setup.d/lynis.sh
// installs it) inside it, through scripts/lynis-in-root.sh as
// bench/lockdown does: its hardening index must be at least 80, and above
// the stock root's. The log lists the tests that still cost points.
func TestDebianRootLynis(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Lynis twice in a Debian root")
	}
	if _, err := exec.LookPath("lynis"); err != nil {
		t.Fatal("lynis is not installed: scripts/setup.d/lynis.sh installs it (run scripts/test)")
	}
	script, err := filepath.Abs("../../scripts/lynis-in-root.sh")
	if err != nil {
		t.Fatal(err)
	}
	root := debianRoot(t)
	stock := filepath.Join(t.TempDir(), "stock")
	if out, err := exec.Command("cp", "-a", root, stock).CombinedOutput(); err != nil {
		t.Fatalf("copy root: %v: %s", err, out)
	}
	c := testCatalog(t)
	e := testEngine(t)
	rep, err := e.Apply(context.Background(), selectProfile(t, c, "sysadmin"), root, ApplyOptions{StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed() != 0 {
		for _, r := range rep.Results {
			if r.Label() == ResultFail {
				t.Logf("still failing after apply: %s (%s)", r.ID, r.Note)
			}
		}
	}

	before := runLynis(t, script, stock)
	after := runLynis(t, script, root)
	t.Logf("Lynis hardening index: stock %d, after sysadmin %d (goal ≥ %d)", before, after, lynisGoal)
	lost := lynisLost(t, filepath.Join(root, "var/log/lynis.log"))
	t.Logf("tests that still cost points after sysadmin (earned/max):\n  %s", strings.Join(lost, "\n  "))
	if after < lynisGoal {
		t.Errorf("Lynis hardening index after sysadmin is %d, want at least %d", after, lynisGoal)
	}
	if after <= before {
		t.Errorf("Lynis hardening index after sysadmin is %d, not above the stock root's %d", after, before)
	}
	// Lynis really audited the root: the report names the tests it ran,
	// among them those the sysadmin rules answer.
	report, err := os.ReadFile(filepath.Join(root, "var/log/lynis-report.dat"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"lynis_version=3.", "os_name=Debian", "AUTH-9230", "BANN-7126", "FINT-4350"} {
		if !strings.Contains(string(report), want) {
			t.Errorf("Lynis report has no %q: did it audit the root?", want)
		}
	}
	for _, s := range regexp.MustCompile(`(?m)^suggestion\[\]=((?:BANN-7126|BANN-7130|AUTH-9230|STRG-1846|DEB-0280|FINT-4350)\|[^|]*)`).FindAllStringSubmatch(string(report), -1) {
		t.Errorf("Lynis still suggests %s", s[1])
	}
}

// runLynis runs scripts/lynis-in-root.sh on root and returns the index.
func runLynis(t testing.TB, script, root string) int {
	t.Helper()
	out, err := exec.Command(script, root).Output()
	if err != nil {
		var stderr []byte
		if ee := new(exec.ExitError); errors.As(err, &ee) {
			stderr = ee.Stderr
		}
		t.Fatalf("%s %s: %v: %s", script, root, err, stderr)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("Lynis printed %q, not a hardening index", out)
	}
	return n
}

// lynisLost reads Lynis's log and lists, per test, the hardening points it
// gave when it gave fewer than the maximum.
func lynisLost(t testing.TB, log string) []string {
	t.Helper()
	f, err := os.Open(log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	test := regexp.MustCompile(`Performing test ID (\S+)`)
	partial := regexp.MustCompile(`Hardening: assigned partial number of hardening points \((\d+) of (\d+)\)`)
	full := regexp.MustCompile(`Hardening: assigned maximum number of hardening points for this item \((\d+)\)`)
	earned, most := map[string]int{}, map[string]int{}
	id := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := sc.Text()
		if m := test.FindStringSubmatch(l); m != nil {
			id = m[1]
		} else if m := partial.FindStringSubmatch(l); m != nil {
			a, _ := strconv.Atoi(m[1])
			b, _ := strconv.Atoi(m[2])
			earned[id] += a
			most[id] += b
		} else if m := full.FindStringSubmatch(l); m != nil {
			a, _ := strconv.Atoi(m[1])
			earned[id] += a
			most[id] += a
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	var out []string
	for id, m := range most {
		if earned[id] < m {
			out = append(out, id+" "+strconv.Itoa(earned[id])+"/"+strconv.Itoa(m))
		}
	}
	sort.Strings(out)
	return out
}
