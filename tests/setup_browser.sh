#!/bin/sh
# Test set-up for the report tests: headless Chromium (and CJK fonts for Chinese chart labels).
#
# Installs Debian's `chromium` (and `fonts-noto-cjk`) with apt-get when /usr/bin/chromium is
# missing and we run as root; otherwise it does nothing and says why. tests/test_report.py
# skips its browser test with a clear reason when chromium is still absent.
# Usage (CI, as root):  sh tests/setup_browser.sh
set -eu

if [ -x /usr/bin/chromium ]; then
    echo "setup_browser: /usr/bin/chromium is present"
    exit 0
fi
if [ "$(id -u)" != "0" ]; then
    echo "setup_browser: /usr/bin/chromium is missing and we are not root: not installing (the browser test will skip)" >&2
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup_browser: no apt-get: install chromium by other means (the browser test will skip)" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-noto-cjk
echo "setup_browser: installed $(/usr/bin/chromium --version 2>/dev/null || echo chromium)"
