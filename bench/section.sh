# shellcheck shell=bash
# Sourced by the bench/*/run.sh scripts: the machine line every section
# carries, and the replacement of one marked section of docs/BENCHMARKS.md.

# bench_machine prints the machine a figure was measured on.
bench_machine() {
	echo "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/{print $2}') GiB, kernel $(uname -r)"
}

# bench_write_section NAME FILE replaces the section between
# <!-- NAME:start --> and <!-- NAME:end --> in docs/BENCHMARKS.md with FILE
# (which carries the markers), or appends it.
bench_write_section() {
	python3 - "$1" "$2" <<'PY'
import re, sys
name, new = sys.argv[1], open(sys.argv[2]).read()
p = "docs/BENCHMARKS.md"
s = open(p).read()
start, end = "<!-- %s:start -->" % name, "<!-- %s:end -->" % name
if start in s:
    s = re.sub(re.escape(start) + r".*?" + re.escape(end) + r"\n?", lambda m: new, s, flags=re.S)
else:
    s = s.rstrip("\n") + "\n\n" + new
open(p, "w").write(s)
PY
}
