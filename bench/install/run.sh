#!/usr/bin/env bash
# Installing real Debian security updates: a Bulwark agent pass (foreground
# and auto mode) against apt-get install --download-only + dpkg -i and
# apt-get install, with the same .debs in copies of one debootstrapped root,
# in the same run; writes the "Installing real updates" section of
# docs/BENCHMARKS.md. Needs root (chroot). Not part of the test run.
#   bench/install/run.sh [reps]        (default 3)
set -euo pipefail
cd "$(dirname "$0")/../.."
. bench/section.sh
apt_need() { :; } # scripts/test installs what is missing; here it is there
. scripts/setup.d/apt-sources.sh
. scripts/setup.d/install.sh
. scripts/setup.d/lockdown.sh
load0=$(cut -d" " -f1-3 /proc/loadavg)
out=$(mktemp)
go run ./bench/install -reps "${1:-3}" >"$out"
{
	echo "<!-- install:start -->"
	echo "## Installing real updates"
	echo
	echo "Command: \`bench/install/run.sh ${1:-3}\` ($(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD), as root)."
	echo "Machine: $(bench_machine); load average when the run started: $load0."
	echo
	echo "Real bookworm security updates (\`apt-get download\` by scripts/setup.d/install.sh) into copies of the"
	echo "debootstrapped bookworm root of scripts/setup.d/lockdown.sh, which has the older versions; each way"
	echo "starts from a fresh copy (not timed) and must leave every package installed at the new version with"
	echo "\`dpkg --audit\` clean. Agent: a real update server (HTTPS on loopback) hosts the updates as four"
	echo "vendor updates, approved for a group; a freshly enrolled agent checks in once (TUF metadata, verified"
	echo "downloads, one \`apt-get install\` transaction chrooted into the root, the report). apt: a flat"
	echo "repository of the same files (\`dpkg-scanpackages\`) over HTTP on loopback; \`apt-get update\` runs"
	echo "before each apt timing and is **not** counted (the agent's metadata refresh is). Medians of ${1:-3} runs."
	echo
	cat "$out"
	echo "<!-- install:end -->"
} >"$out.md"
bench_write_section install "$out.md"
cat "$out.md"
rm -f "$out" "$out.md"
