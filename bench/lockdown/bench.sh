#!/usr/bin/env bash
# Lockdown audit time per profile on the Debian 12 root, against OpenSCAP's
# oscap evaluating the SCAP Security Guide's Debian "standard" profile on a
# copy of the same root, in the same run. Writes the "## Lockdown" section of
# docs/BENCHMARKS.md (and nothing else in it).
#
#   bench/lockdown/bench.sh            # 7 runs of each, median
#   RUNS=3 bench/lockdown/bench.sh
#
# Needs root (oscap and the Debian root), and installs debootstrap,
# openscap-scanner and ssg-debian with apt-get when they are missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-7}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

apt_updated=""
apt_need() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	[ -z "$apt_updated" ] && apt-get update -qq && apt_updated=1
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
# The same root the tests use.
. scripts/setup.d/lockdown.sh
apt_need openscap-scanner ssg-debian bc

go build -o "$work/bulwark" ./cmd/bulwark
root="$BULWARK_TEST_DEBIAN_ROOT"

# median of the wall-clock seconds of RUNS runs of a command.
median() {
	local times=() i start end
	for i in $(seq "$RUNS"); do
		start=$(date +%s.%N)
		"$@" >/dev/null 2>&1 || true
		end=$(date +%s.%N)
		times+=("$(echo "$end - $start" | bc -l)")
	done
	printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.3f", a[int((NR+1)/2)]}'
}

declare -A bw rules
for p in end-user small-business sysadmin web-server; do
	bw[$p]=$(median "$work/bulwark" lockdown audit --profile "$p" --root "$root")
	rules[$p]=$("$work/bulwark" lockdown show "$p" | sed -n 's/^rules (\([0-9]*\)):/\1/p')
done

# ssg-debian in Debian 12 ships content for Debian 10 and 11 only. Its
# platform check reads VERSION_ID from /etc/os-release with a one-digit
# pattern, so on a Debian 12 root every rule is notapplicable. The peer
# therefore evaluates ssg-debian11's standard profile on a copy of the root
# whose os-release and debian_version say 11; nothing else differs.
ds=/usr/share/xml/scap/ssg/content/ssg-debian11-ds.xml
profile=xccdf_org.ssgproject.content_profile_standard
cp -a "$root" "$work/oscap-root"
rm -f "$work/oscap-root/etc/os-release"
sed 's/^VERSION_ID="12"/VERSION_ID="11"/' "$root/usr/lib/os-release" >"$work/oscap-root/etc/os-release"
echo 11.9 >"$work/oscap-root/etc/debian_version"
cd "$work"
export OSCAP_PROBE_ROOT="$work/oscap-root"
oscap_time=$(median oscap xccdf eval --profile "$profile" "$ds")
oscap xccdf eval --profile "$profile" "$ds" >oscap.out 2>&1 || true
oscap_rules=$(grep -c '^Result' oscap.out || true)
oscap_counts=$(grep '^Result' oscap.out | awk '{print $2}' | sort | uniq -c | awk '{printf "%s%d %s", sep, $1, $2; sep=", "}')
unset OSCAP_PROBE_ROOT
cd - >/dev/null

sys=${bw[sysadmin]}
ratio=$(echo "$sys / $oscap_time" | bc -l)
goal="met"
[ "$(echo "$ratio < 0.5" | bc -l)" -eq 1 ] || goal="NOT met"
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
section=$(cat <<MD
## Lockdown

Audit time of one profile on the Debian 12 root built by \`scripts/setup.d/lockdown.sh\`
(\`debootstrap --variant=minbase --include=openssh-server,nginx,procps bookworm\`), reading the
files under \`--root\`. Median wall-clock time of $RUNS runs of the whole process, including
loading and parsing the embedded rules.

Command: \`bench/lockdown/bench.sh\` (RUNS=$RUNS), $(date -u +%Y-%m-%d).
Machine: $(nproc) CPUs ($cpu), $(free -g | awk '/Mem:/ {print $2}') GiB RAM, $(. /etc/os-release; echo "$PRETTY_NAME"), $(go version | awk '{print $3}').

| tool | profile | rules | median time (s) |
|---|---|---:|---:|
| bulwark lockdown audit | end-user | ${rules[end-user]} | ${bw[end-user]} |
| bulwark lockdown audit | small-business | ${rules[small-business]} | ${bw[small-business]} |
| bulwark lockdown audit | sysadmin | ${rules[sysadmin]} | ${bw[sysadmin]} |
| bulwark lockdown audit | web-server | ${rules[web-server]} | ${bw[web-server]} |
| oscap $(oscap --version | head -1 | awk '{print $NF}') xccdf eval (ssg-debian $(dpkg-query -W -f='${Version}' ssg-debian)) | standard | $oscap_rules | $oscap_time |

Goal: a full \`sysadmin\` audit in under half of oscap's time. sysadmin / oscap = $(printf '%.3f' "$ratio"): goal $goal.

Peer results on the root: $oscap_counts. \`ssg-debian\` in Debian 12 has content for
Debian 10 and 11 only, and its platform check matches a one-digit \`VERSION_ID\`, so on the
Debian 12 root every rule is \`notapplicable\`; the script therefore runs oscap (with
\`OSCAP_PROBE_ROOT\`) on a copy of the root whose \`/etc/os-release\` and \`/etc/debian_version\`
say 11. The two tools check different rule sets (44 SSG rules against bulwark's profiles), so
the comparison is of whole-profile audit time, not per rule.
MD
)
doc=docs/BENCHMARKS.md
tmp=$(mktemp)
awk -v section="$section" '
	/^## Lockdown$/ { skip = 1; print section; done = 1; next }
	skip && /^## / { skip = 0; print "" }
	!skip { print }
	END { if (!done) { print ""; print section } }
' "$doc" >"$tmp"
cat "$tmp" >"$doc"
rm -f "$tmp"
echo "bench/lockdown: sysadmin ${sys}s, oscap standard ${oscap_time}s (ratio $(printf '%.3f' "$ratio")); wrote the Lockdown section of $doc"
