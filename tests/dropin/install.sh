#!/usr/bin/env bash
# Installs the real trackers tests/test_dropin_browser.py serves to Chromium:
# - Plausible's npm package, locked in package-lock.json (npm ci);
# - Umami's tracker script, which ships only inside the `umami` app package: that one tarball is
#   fetched with `npm pack` (none of the app's dependencies), checked against the integrity pinned
#   in umami.integrity, and its script unpacked to vendor/umami/.
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund --loglevel=error
read -r spec integrity < umami.integrity
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tarball=$(cd "$work" && npm pack "$spec" --silent --loglevel=error | tail -n 1)
actual="sha512-$(openssl dgst -sha512 -binary "$work/$tarball" | base64 -w0)"
if [ "$actual" != "$integrity" ]; then
  echo "tests/dropin: $spec does not match umami.integrity ($actual)" >&2
  exit 1
fi
rm -rf vendor/umami && mkdir -p vendor/umami
tar -xzf "$work/$tarball" -C vendor/umami --strip-components=1 package/src/tracker/index.js package/package.json
