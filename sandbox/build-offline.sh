#!/usr/bin/env bash
# Build the sandbox image with no registry: debootstrap a minimal Debian with python3 from the
# machine's Debian mirror, `docker import` it as a base, then build sandbox/Dockerfile on it.
# Usage: sandbox/build-offline.sh [TAG]   (env: DEBIAN_MIRROR, DEBIAN_SUITE, REBUILD_BASE=1)
set -euo pipefail
tag=${1:-genetic-instruct-sandbox:latest}
here=$(cd "$(dirname "$0")" && pwd)
suite=${DEBIAN_SUITE:-bookworm}
base="genetic-instruct-sandbox-base:${suite}"

mirror=${DEBIAN_MIRROR:-}
if [ -z "$mirror" ]; then  # the first plain Debian mirror apt uses here (deb822 or one-line)
  mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null \
    | awk '/^URIs:/ {print $2}' | grep -E '/debian/?$' | head -n1 || true)
fi
if [ -z "$mirror" ]; then
  mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
    | awk '$1 == "deb" {for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) {print $i; exit}}' \
    | grep -E '/debian/?$' | head -n1 || true)
fi
mirror=${mirror:-http://deb.debian.org/debian}

if [ "${REBUILD_BASE:-0}" = 1 ] || ! docker image inspect "$base" >/dev/null 2>&1; then
  command -v debootstrap >/dev/null || { echo "build-offline: debootstrap is missing: apt-get install -y debootstrap" >&2; exit 1; }
  [ "$(id -u)" = 0 ] || { echo "build-offline: debootstrap needs root" >&2; exit 1; }
  rootfs=$(mktemp -d /tmp/gi-rootfs.XXXXXX)
  trap 'rm -rf "$rootfs"' EXIT
  echo "build-offline: debootstrap $suite from $mirror (about a minute)"
  debootstrap --variant=minbase --include=python3 "$suite" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 \
    || { tail -n 20 "$rootfs.log" >&2; rm -f "$rootfs.log"; exit 1; }
  rm -f "$rootfs.log"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
         "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*
  tar -C "$rootfs" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["python3"]' - "$base" >/dev/null
  echo "build-offline: imported $base"
fi

sha=$(sha256sum "$here/runner.py" | cut -d' ' -f1)
docker build -q --build-arg "BASE=$base" --build-arg "RUNNER_SHA256=$sha" -t "$tag" "$here" >/dev/null
echo "build-offline: built $tag (runner $sha)"
