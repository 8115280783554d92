package lockdown

import (
	"fmt"
	"strings"
)

// maxDiffLines bounds the quadratic line diff; larger files get a summary.
const maxDiffLines = 4000

// unifiedDiff renders the change from old to new as a unified diff with three
// lines of context, the way `diff -u` shows it.
func unifiedDiff(name string, old, new []byte, existed bool) string {
	a := splitLines(string(old))
	b := splitLines(string(new))
	from := "a" + name
	if !existed {
		from = "/dev/null"
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "--- %s\n+++ b%s\n", from, name)
	if len(a) > maxDiffLines || len(b) > maxDiffLines {
		fmt.Fprintf(&sb, "@@ file too long to diff: %d lines before, %d after @@\n", len(a), len(b))
		return sb.String()
	}
	ops := lineOps(a, b)
	const ctx = 3
	// Group ops into hunks separated by more than 2*ctx unchanged lines.
	i := 0
	for i < len(ops) {
		for i < len(ops) && ops[i].kind == ' ' {
			i++
		}
		if i >= len(ops) {
			break
		}
		start := max(i-ctx, 0)
		end := i
		for end < len(ops) {
			if ops[end].kind != ' ' {
				end++
				continue
			}
			run := end
			for run < len(ops) && ops[run].kind == ' ' {
				run++
			}
			if run-end > 2*ctx || run == len(ops) {
				end = min(end+ctx, len(ops))
				break
			}
			end = run
		}
		aStart, bStart := ops[start].ai, ops[start].bi
		aLen, bLen := 0, 0
		var body strings.Builder
		for _, op := range ops[start:end] {
			switch op.kind {
			case ' ':
				aLen++
				bLen++
			case '-':
				aLen++
			case '+':
				bLen++
			}
			body.WriteByte(op.kind)
			body.WriteString(op.text)
			body.WriteByte('\n')
		}
		fmt.Fprintf(&sb, "@@ -%s +%s @@\n", hunkRange(aStart, aLen), hunkRange(bStart, bLen))
		sb.WriteString(body.String())
		i = end
	}
	return sb.String()
}

func hunkRange(start, n int) string {
	if n == 0 {
		return fmt.Sprintf("%d,0", start)
	}
	return fmt.Sprintf("%d,%d", start+1, n)
}

type lineOp struct {
	kind   byte // ' ', '-', '+'
	text   string
	ai, bi int // line index in a and b where this op starts
}

func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// lineOps is a longest-common-subsequence line diff; configuration files are
// small enough for the quadratic table.
func lineOps(a, b []string) []lineOp {
	// Edits are local: diff only what lies between the common prefix and
	// suffix.
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	var ops []lineOp
	for i := 0; i < pre; i++ {
		ops = append(ops, lineOp{' ', a[i], i, i})
	}
	for _, op := range lcsOps(a[pre:len(a)-suf], b[pre:len(b)-suf]) {
		op.ai += pre
		op.bi += pre
		ops = append(ops, op)
	}
	for k := suf; k > 0; k-- {
		ops = append(ops, lineOp{' ', a[len(a)-k], len(a) - k, len(b) - k})
	}
	return ops
}

func lcsOps(a, b []string) []lineOp {
	n, m := len(a), len(b)
	lcs := make([][]int32, n+1)
	for i := range lcs {
		lcs[i] = make([]int32, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var ops []lineOp
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && a[i] == b[j]:
			ops = append(ops, lineOp{' ', a[i], i, j})
			i++
			j++
		case i < n && (j == m || lcs[i+1][j] >= lcs[i][j+1]):
			ops = append(ops, lineOp{'-', a[i], i, j})
			i++
		default:
			ops = append(ops, lineOp{'+', b[j], i, j})
			j++
		}
	}
	return ops
}
