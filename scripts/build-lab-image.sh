#!/usr/bin/env bash
# Builds `shoal/lab-node:dev`, the image of a `shoal lab` node, offline: shoal/lab-base:12 (Debian
# 12 + Docker, scripts/build-lab-base.sh, kept while its package list is unchanged) with Node 20
# and the built Shoal from shoal/shoal:dev (scripts/build-images.sh, which also makes the test
# workload shoal/busybox). docker/lab-node.Dockerfile says what goes in. Idempotent: with nothing
# changed, a re-run takes seconds (Docker's cache). Needs root and Docker. Prints the image id.
set -euo pipefail
cd "$(dirname "$0")/.."
LAB_IMAGE=${LAB_IMAGE:-shoal/lab-node:dev}
LAB_BASE_IMAGE=${LAB_BASE_IMAGE:-shoal/lab-base:12}
SHOAL_IMAGE=${SHOAL_IMAGE:-shoal/shoal:dev}

bash scripts/ensure-docker.sh
echo "== lab base $LAB_BASE_IMAGE" >&2
LAB_BASE_IMAGE=$LAB_BASE_IMAGE bash scripts/build-lab-base.sh >/dev/null
SHOAL_IMAGE=$SHOAL_IMAGE bash scripts/build-images.sh
if ! docker buildx version >/dev/null 2>&1; then export DOCKER_BUILDKIT=0; fi
echo "== $LAB_IMAGE" >&2
# The classic builder warns it is deprecated on stderr: shown only when the build fails.
if ! out=$(docker build -q --force-rm -f docker/lab-node.Dockerfile \
  --build-arg LAB_BASE="$LAB_BASE_IMAGE" --build-arg SHOAL_IMAGE="$SHOAL_IMAGE" -t "$LAB_IMAGE" . 2>&1); then
  echo "$out" >&2
  exit 1
fi
docker image prune -f --filter label=org.shoal.image=shoal-lab-node >/dev/null
docker image inspect --format '{{.Id}}' "$LAB_IMAGE"
