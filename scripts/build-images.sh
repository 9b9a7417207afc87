#!/usr/bin/env bash
# Builds every image Shoal's containers need, offline (no image registry is reachable here):
#   shoal/node-base:20     the base: this machine's Node 20 runtime (scripts/build-base-image.sh)
#   shoal/shoal:dev        Shoal itself (the Dockerfile, FROM the base above), or $SHOAL_IMAGE
#                          (and shoal/shoal-build:dev, its build stage, kept for Docker's cache)
#   shoal/busybox:latest   the test workload (scripts/build-test-image.sh)
# npm's registry is reached from this host only: the dependencies are first fetched into
# docker/npm-cache (kept between runs), and the image's build stage installs from it with
# `npm ci --offline`. Idempotent; with nothing changed, a re-run takes seconds (Docker's cache).
# Needs root (apt-get for busybox-static) and Docker (started by scripts/ensure-docker.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
SHOAL_IMAGE=${SHOAL_IMAGE:-shoal/shoal:dev}
BASE=shoal/node-base:20

bash scripts/ensure-docker.sh
echo "== base image $BASE" >&2
BASE_IMAGE=$BASE bash scripts/build-base-image.sh >/dev/null

# Every dependency (dev ones too: the build stage compiles), fetched into docker/npm-cache.
echo "== npm cache (docker/npm-cache)" >&2
stage=$(mktemp -d /tmp/shoal-npm-stage.XXXXXX)
trap 'rm -rf "$stage"' EXIT
cp package.json package-lock.json "$stage/"
for p in packages/*/; do
  mkdir -p "$stage/$p"
  cp "$p/package.json" "$stage/$p"
  if [ -d "$p/bin" ]; then cp -r "$p/bin" "$stage/$p"; fi
done
cache="$PWD/docker/npm-cache"
mkdir -p "$cache"
# Fetched again only when the manifests change (npm would rewrite the cache's index otherwise, and
# every image build would start over from `npm ci`).
stamp=$(cat "$stage/package-lock.json" "$stage"/packages/*/package.json | sha256sum | cut -d' ' -f1)
if [ "$(cat "$cache/.manifests.sha256" 2>/dev/null)" != "$stamp" ]; then
  (cd "$stage" && npm ci --cache "$cache" --prefer-offline --ignore-scripts --no-audit --no-fund \
    --loglevel=error --logs-max=0 >/dev/null)
  rm -rf "$cache/_logs"
  echo "$stamp" >"$cache/.manifests.sha256"
fi

# The classic builder when BuildKit's buildx is not installed (Debian's docker.io).
if ! docker buildx version >/dev/null 2>&1; then export DOCKER_BUILDKIT=0; fi
echo "== $SHOAL_IMAGE" >&2
args=(--force-rm --build-arg BASE_IMAGE=$BASE --build-arg NPM_FLAGS=--offline)
# The build stage is tagged too (shoal/shoal-build:dev), so that the previous builds' images, now
# untagged, can be pruned without losing the cache of this one.
docker build -q "${args[@]}" --target build -t shoal/shoal-build:dev . >/dev/null
docker build -q "${args[@]}" -t "$SHOAL_IMAGE" . >/dev/null
docker image prune -f --filter label=org.shoal.image=shoal >/dev/null
docker image prune -f --filter label=org.shoal.image=shoal-build >/dev/null

# Smoke test: both programs and LevelDB's native addon load in the image, as the user shoal.
docker run --rm "$SHOAL_IMAGE" sh -c \
  'test "$(id -un)" = shoal && node -e "require(\"/opt/shoal/node_modules/classic-level\")" && shoald --help >/dev/null && shoal --help >/dev/null' ||
  { echo "build-images: smoke test of $SHOAL_IMAGE failed" >&2; exit 1; }

echo "== test workload shoal/busybox:latest" >&2
bash scripts/build-test-image.sh >/dev/null
docker image ls --format '{{.Repository}}:{{.Tag}}  {{.ID}}  {{.Size}}' | grep -E "^($BASE|$SHOAL_IMAGE|shoal/busybox:latest) " >&2
