# shellcheck shell=bash
# Sourced by scripts/test before the other setup steps: apt_mirror SUITE
# prints the URI of the first enabled "deb" source of this machine's apt
# configuration that serves SUITE with the main component, read from the
# one-line format (/etc/apt/sources.list, sources.list.d/*.list) and the
# deb822 format (sources.list.d/*.sources). Nothing in the repository names
# a mirror host: tests and benchmarks take Debian from wherever this
# machine's apt takes it. BULWARK_DEBIAN_MIRROR overrides it.

apt_mirror() {
	local suite="$1" etc="${APT_SOURCES_DIR:-/etc/apt}" uri=""
	if [ -n "${BULWARK_DEBIAN_MIRROR:-}" ]; then
		echo "$BULWARK_DEBIAN_MIRROR"
		return 0
	fi
	local f
	for f in "$etc"/sources.list "$etc"/sources.list.d/*.list; do
		[ -r "$f" ] || continue
		# deb [options] URI SUITE COMPONENT...
		uri=$(awk -v suite="$suite" '
			{ sub(/#.*/, "") }
			$1 != "deb" { next }
			{
				i = 2
				if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
				if ($(i+1) != suite) next
				for (j = i + 2; j <= NF; j++) if ($j == "main") { print $i; exit }
			}' "$f")
		[ -n "$uri" ] && break
	done
	if [ -z "$uri" ]; then
		for f in "$etc"/sources.list.d/*.sources; do
			[ -r "$f" ] || continue
			# Stanzas separated by blank lines; fields may be folded onto
			# continuation lines starting with white space.
			uri=$(awk -v suite="$suite" '
				function flush() {
					if (types ~ /(^| )deb( |$)/ && enabled !~ /^(no|false|0)$/ && \
					    (" " suites " ") ~ (" " suite " ") && (" " comps " ") ~ / main /) {
						split(uris, u, " "); print u[1]; found = 1; exit
					}
					types = uris = suites = comps = last = ""; enabled = "yes"
				}
				BEGIN { enabled = "yes" }
				/^[ \t]*#/ { next }
				/^[ \t]*$/ { flush(); next }
				/^[ \t]/ { v = $0; gsub(/^[ \t]+|[ \t]+$/, "", v); val[last] = val[last] " " v; set(last, val[last]); next }
				{
					k = tolower($0); sub(/:.*/, "", k)
					v = $0; sub(/^[^:]*:[ \t]*/, "", v); sub(/[ \t]+$/, "", v)
					last = k; val[k] = v; set(k, v)
				}
				function set(k, v) {
					if (k == "types") types = v
					else if (k == "uris") uris = v
					else if (k == "suites") suites = v
					else if (k == "components") comps = v
					else if (k == "enabled") enabled = tolower(v)
				}
				END { if (!found) flush() }' "$f")
			[ -n "$uri" ] && break
		done
	fi
	if [ -z "$uri" ]; then
		echo "scripts/test: no apt source for suite $suite with component main in $etc/sources.list or $etc/sources.list.d/ (add one, or set BULWARK_DEBIAN_MIRROR to a Debian mirror URL)" >&2
		return 1
	fi
	echo "${uri%/}"
}

# bulwark_test_cache is where test setup keeps what it builds or downloads
# once: outside the repository and outside the machine's /etc and /var.
bulwark_test_cache="${BULWARK_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/bulwark-test}"
