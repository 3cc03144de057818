#!/usr/bin/env bash
# Build the local stand-in for the official python slim image, once: a debootstrap'ed Debian
# bookworm (minbase + python3, venv, pip) imported into the local image store as $BASE_IMAGE.
# The image store is the cache: a second run finds the image and returns at once.
# IMAGES_REBUILD_BASE=1 forces a new one.
set -euo pipefail

BASE_IMAGE=${BASE_IMAGE:-localhost/imcluster-base:bookworm}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

if [[ ${IMAGES_REBUILD_BASE:-0} != 1 ]] && buildah inspect --type image "$BASE_IMAGE" >/dev/null 2>&1; then
    echo "base: $BASE_IMAGE is cached"
    exit 0
fi

rootfs=$(mktemp -d /var/tmp/imcluster-base.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
echo "base: debootstrap bookworm into $rootfs (about a minute)"
debootstrap --variant=minbase --include=python3,python3-venv,python3-pip bookworm "$rootfs" "$MIRROR" \
    > "$rootfs.log" 2>&1 || { tail -20 "$rootfs.log"; exit 1; }
rm -f "$rootfs.log"
# What the official slim images also drop: package lists and caches, docs and man pages.
chroot "$rootfs" apt-get clean
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/usr/share/doc/* \
    "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/var/log/*.log
tar -C "$rootfs" --numeric-owner -c . | podman import --quiet \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    - "$BASE_IMAGE" >/dev/null
echo "base: $BASE_IMAGE imported"
