# shellcheck shell=bash
# The console's browser tests (internal/e2e TestConsoleInBrowser) drive
# Debian's chromium with chromedp; fonts make the saved screenshots legible.
# With CI=true the test fails, never skips, when chromium is missing.
apt_need chromium fonts-dejavu-core
