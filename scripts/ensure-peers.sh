#!/usr/bin/env bash
# Installs the real protocol peers the tests run against, if they are missing.
# Tests fail (not skip) without them, so this runs before every test run.
set -euo pipefail
need=()
command -v coap-server-notls >/dev/null 2>&1 || need+=(libcoap3-bin)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v xml2wbxml >/dev/null 2>&1 || need+=(libwbxml2-utils)
[ -x /usr/sbin/bearerbox ] && [ -x /usr/sbin/smsbox ] || need+=(kannel)
[ -x /usr/lib/kannel/test/fakesmsc ] || need+=(kannel-extras)
[ -x /usr/bin/chromium ] || need+=(chromium)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
  echo "missing system packages: ${need[*]} (run as root, or: sudo apt-get install -y ${need[*]})" >&2
  exit 1
fi
echo "installing system packages: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${need[@]}" >/dev/null
