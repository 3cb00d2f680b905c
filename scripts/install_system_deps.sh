#!/usr/bin/env bash
# Debian packages evalkit's codecs need. As root it installs them; otherwise it says what to run.
set -euo pipefail

PACKAGES=(ffmpeg libvo-amrwbenc0 libopencore-amrwb0 codec2 libsndfile1 chromium flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts nodejs npm)

missing=()
for pkg in "${PACKAGES[@]}"; do
  # Node.js from another source (e.g. NodeSource's nodejs) brings its own npm and conflicts with Debian's.
  [ "$pkg" = npm ] && command -v npm >/dev/null && continue
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "evalkit needs these Debian packages: ${missing[*]}" >&2
  echo "install them with: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  echo "(codecs whose library is missing show as unavailable in 'evalkit codecs')" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
