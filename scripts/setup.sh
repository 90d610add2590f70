#!/usr/bin/env bash
# Installs the Debian 12 packages qverify builds with (as root, or through sudo), then configures and
# builds into ./build. Safe to run again: it installs only what is missing and rebuilds incrementally.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  g++ pkg-config meson ninja-build ccache
  libboost-dev libboost-program-options-dev nlohmann-json3-dev
  libgtest-dev librapidcheck-dev libbenchmark-dev libdnnl-dev
  libtorch-dev zlib1g-dev libpng-dev libjpeg62-turbo-dev dataset-fashion-mnist chromium
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -f build/build.ninja ]; then
  meson setup build --buildtype=release
fi
ninja -C build
