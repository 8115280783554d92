# shellcheck shell=bash
# The install tests' setup, sourced by scripts/test. busybox-static gives
# the small directory roots of internal/install's tests a /bin/sh for their
# maintainer scripts, which dpkg runs chrooted into the root.
#
# Real Debian packages for the install tests:
# downloads this machine's apt candidates (on a bookworm machine with
# bookworm-security in its sources, the security updates) of a set chosen for
# what makes installing hard, once, with `apt-get download`, into
# $bulwark_test_cache/debs (outside the repository and the machine's /var),
# and exports BULWARK_TEST_DEBS with that directory:
#   - pam: libpam0g, libpam-modules-bin, libpam-modules, libpam-runtime, one
#     update whose packages Pre-Depend on each other (libpam-modules
#     pre-depends on libpam-modules-bin of the same version);
#   - ca-certificates: its postinst rebuilds /etc/ssl/certs inside the root;
#   - libssl3 and openssl: a library and its tool;
#   - tzdata: a data package with debconf questions.
# BULWARK_TEST_DEBIAN_ROOT (lockdown.sh) holds the older bookworm versions of
# these, so the tests really upgrade. A MANIFEST file lists the downloaded
# files once the download is complete; the directory is replaced whole.

apt_need busybox-static

realdebs_pkgs="libpam0g libpam-modules-bin libpam-modules libpam-runtime ca-certificates libssl3 openssl tzdata"
realdebs_dir="$bulwark_test_cache/debs"

if [ ! -s "$realdebs_dir/MANIFEST" ]; then
	realdebs_policy=$(apt-cache policy libpam-modules 2>/dev/null || true)
	if [[ "$realdebs_policy" != *"Candidate: "[0-9]* ]]; then
		sudo=""
		[ "$(id -u)" -ne 0 ] && sudo="sudo"
		echo "scripts/test: apt-get update (no candidate for libpam-modules yet)"
		$sudo apt-get update -qq
		unset sudo
	fi
	echo "scripts/test: downloading real Debian packages into $realdebs_dir: $realdebs_pkgs"
	mkdir -p "$bulwark_test_cache"
	realdebs_tmp=$(mktemp -d "$bulwark_test_cache/debs.XXXXXX")
	# shellcheck disable=SC2086
	if ! (cd "$realdebs_tmp" && apt-get download -q -o APT::Sandbox::User="$(id -un)" $realdebs_pkgs >download.log 2>&1); then
		echo "scripts/test: apt-get download failed; see $realdebs_tmp/download.log" >&2
		return 1
	fi
	rm -f "$realdebs_tmp/download.log"
	(cd "$realdebs_tmp" && ls -1 -- *.deb >MANIFEST)
	chmod 755 "$realdebs_tmp"
	rm -rf "$realdebs_dir"
	mv "$realdebs_tmp" "$realdebs_dir"
	unset realdebs_tmp
fi
export BULWARK_TEST_DEBS="$realdebs_dir"
unset realdebs_pkgs realdebs_dir realdebs_policy
