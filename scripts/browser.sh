#!/usr/bin/env bash
# The browser the page's test drives: Debian's Chromium and its ChromeDriver, from the OS's
# packages (never a browser download at run time). Installed as PostgreSQL is (scripts/pg.sh):
# on Debian as root when missing, skipped when already there. Prints two lines,
# TEST_CHROMIUM=… and TEST_CHROMEDRIVER=…, for `make test` to export; fails, saying why,
# when they are missing and cannot be installed.
set -euo pipefail

find_pair() {
  chromium=$(command -v chromium || command -v chromium-browser || true)
  chromedriver=$(command -v chromedriver || true)
  [ -n "$chromium" ] && [ -n "$chromedriver" ]
}

if ! find_pair; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing Chromium and ChromeDriver from Debian's packages" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) >&2 \
      || { echo "apt-get could not install chromium and chromium-driver: the browser test cannot run" >&2; exit 1; }
  fi
  find_pair || {
    echo "Chromium and ChromeDriver are needed for the browser test (Debian: apt-get install chromium chromium-driver)" >&2
    exit 1
  }
fi
echo "TEST_CHROMIUM=$chromium"
echo "TEST_CHROMEDRIVER=$chromedriver"
