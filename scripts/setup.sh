#!/usr/bin/env bash
# Installs what building and testing mcptap needs on a Debian machine (idempotent).
# Needs root (or sudo) for apt-get. Rust (cargo) must already be installed.
set -euo pipefail
need=()
for pkg in libpcap-dev tcpdump tcpreplay iproute2 libcap2-bin openssl prometheus chromium curl; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if ((${#need[@]})); then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "setup: installing ${need[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "setup: cargo not found: install Rust (https://rustup.rs) first" >&2; exit 1; }
