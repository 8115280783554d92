# shellcheck shell=bash
# OpenSCAP as a peer of the lockdown tests, sourced by scripts/test after
# lockdown.sh: installs openscap-scanner and fetches the SCAP Security Guide's
# Debian 12 datastream, then exports BULWARK_TEST_SSG_DS for
# internal/lockdown's TestDebianRootOpenSCAP.
#
# Debian 12's own ssg-debian (0.1.65) has content for Debian 10 and 11 only;
# Debian 13's (trixie) has ssg-debian12-ds.xml. The package is fetched with a
# private apt configuration (sources, lists and cache under the cache
# directory below) from the Debian archive this machine's apt sources already
# name for bookworm (apt_mirror), and unpacked with dpkg-deb -x into the cache: nothing from another
# release is installed, and the machine's apt sources are not changed.

apt_need openscap-scanner debian-archive-keyring

ssg_cache="$bulwark_test_cache/ssg-debian"
ssg_ds="$ssg_cache/unpacked/usr/share/xml/scap/ssg/content/ssg-debian12-ds.xml"

if [ ! -s "$ssg_ds" ]; then
	ssg_release=trixie
	# The Debian archive this machine's apt sources name (apt-sources.sh).
	ssg_mirror=$(apt_mirror bookworm) || return 1
	echo "scripts/test: fetching ssg-debian from Debian $ssg_release at $ssg_mirror (private apt configuration in $ssg_cache)"
	rm -rf "$ssg_cache"
	mkdir -p "$ssg_cache/lists/partial" "$ssg_cache/archives/partial" "$ssg_cache/deb" "$ssg_cache/unpacked"
	echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $ssg_mirror $ssg_release main" >"$ssg_cache/sources.list"
	# Only the files of this directory: not the machine's sources, preferences
	# or apt.conf.d hooks, and no lock on the machine's apt state.
	cat >"$ssg_cache/apt.conf" <<-EOF
		Dir::Etc::sourcelist "$ssg_cache/sources.list";
		Dir::Etc::sourceparts "/nonexistent";
		Dir::Etc::parts "/nonexistent";
		Dir::Etc::preferences "/nonexistent";
		Dir::Etc::preferencesparts "/nonexistent";
		Dir::State::lists "$ssg_cache/lists";
		Dir::Cache "$ssg_cache";
		Dir::Cache::archives "$ssg_cache/archives";
		Dir::Cache::pkgcache "";
		Dir::Cache::srcpkgcache "";
		APT::Sandbox::User "root";
		Acquire::Languages "none";
		Debug::NoLocking "true";
	EOF
	if ! APT_CONFIG="$ssg_cache/apt.conf" apt-get -qq update >"$ssg_cache/apt.log" 2>&1 ||
		! (cd "$ssg_cache/deb" && APT_CONFIG="$ssg_cache/apt.conf" apt-get -qq download ssg-debian) >>"$ssg_cache/apt.log" 2>&1; then
		echo "scripts/test: could not fetch ssg-debian from Debian $ssg_release at $ssg_mirror; see $ssg_cache/apt.log" >&2
		return 1
	fi
	dpkg-deb -x "$ssg_cache"/deb/ssg-debian_*.deb "$ssg_cache/unpacked"
	if [ ! -s "$ssg_ds" ]; then
		echo "scripts/test: $(basename "$ssg_cache"/deb/ssg-debian_*.deb) has no ssg-debian12-ds.xml" >&2
		return 1
	fi
	rm -rf "$ssg_cache/lists" "$ssg_cache/archives"
	unset ssg_release ssg_mirror
fi
export BULWARK_TEST_SSG_DS="$ssg_ds"
unset ssg_cache ssg_ds
