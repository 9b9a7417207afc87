#!/usr/bin/env bash
# Builds `shoal/lab-base:12` offline: a Debian 12 root file system made with debootstrap from
# Debian's packages (the mirror apt already uses; no image registry is reachable here), with a
# Docker engine and the networking tools a lab node needs, `docker import`ed. `shoal lab` nodes are
# containers of shoal/lab-node (scripts/build-lab-image.sh), built FROM this image.
#
# The package list below is the image's only input: an image made from the same list is kept
# (its label org.shoal.lab-base-inputs holds the list's digest); FORCE=1 rebuilds. ~2-3 min.
# Needs root (apt-get, debootstrap) and a running Docker engine. Prints the image id.
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE=${LAB_BASE_IMAGE:-shoal/lab-base:12}
SUITE=bookworm
# docker.io: each node's own engine; iproute2/iptables/nftables/conntrack: its data plane (VXLAN,
# NAT, the routing mesh's kernel mode); docker-registry: the lab's registry runs on this image too.
PACKAGES=docker.io,iproute2,iptables,nftables,conntrack,ca-certificates,procps,iputils-ping,docker-registry

inputs=$(printf '%s\n' "$SUITE" "$PACKAGES" | sha256sum | cut -c1-16)
if [ -z "${FORCE:-}" ] &&
  have=$(docker image inspect --format '{{index .Config.Labels "org.shoal.lab-base-inputs"}}' "$IMAGE" 2>/dev/null) &&
  [ "$have" = "$inputs" ]; then
  docker image inspect --format '{{.Id}}' "$IMAGE"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
if ! command -v debootstrap >/dev/null 2>&1; then
  apt-get install -y -qq debootstrap >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; }
fi
mirror=$(apt-cache policy 2>/dev/null | awk -v s="$SUITE" '/ http/ && $3 ~ "^" s "/" {print $2; exit}')
mirror=${mirror:-http://deb.debian.org/debian}

root=$(mktemp -d /tmp/shoal-lab-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
echo "build-lab-base: debootstrap $SUITE from $mirror (a few minutes)" >&2
if ! debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$root" "$mirror" >"$root.log" 2>&1; then
  tail -20 "$root.log" >&2
  echo "build-lab-base: debootstrap failed (full log: $root.log)" >&2
  exit 1
fi
rm -f "$root.log"
# Nothing of the build host's apt state or caches in the image.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | docker import \
  -c "LABEL org.shoal.lab-base-inputs=$inputs" \
  -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  -c 'CMD ["/bin/bash"]' - "$IMAGE" >/dev/null
docker image inspect --format '{{.Id}}' "$IMAGE"
