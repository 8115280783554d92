# shellcheck shell=bash
# Offline media's test setup, sourced by scripts/test: xorriso writes and
# reads back the ISO 9660 images (internal/media, the media CLI scripts).
apt_need xorriso
