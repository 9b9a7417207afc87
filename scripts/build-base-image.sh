#!/usr/bin/env bash
# Builds `shoal/node-base:20` offline (no image registry is reachable here): a minimal Node.js 20
# image made from this machine's own Node runtime, `docker import`ed. The Shoal image's Dockerfile
# builds FROM it (scripts/build-images.sh passes --build-arg BASE_IMAGE=shoal/node-base:20);
# with a registry, the Dockerfile's default node:20-bookworm-slim works the same way.
#
# The image has what the Dockerfile relies on, at the official image's paths:
#   /usr/local/bin/node                 the host's `node` (must be 20.x), plus the shared libraries
#                                       `ldd` lists (glibc, libstdc++: also what classic-level's
#                                       prebuilt addon needs)
#   /usr/local/bin/npm, npx             the host's npm (for the Dockerfile's build stage)
#   /bin/sh and the usual tools         Debian's static busybox (sh, sed, grep, stat, mkdir, ...)
#   /usr/bin/setpriv                    util-linux's, as in Debian: the entrypoint drops root with it
#   /etc/passwd, /etc/group             root, node (1000), nobody
# Idempotent: an existing image made from the same Node version is kept (FORCE=1 rebuilds).
# Needs root (apt-get) and a running Docker engine (scripts/ensure-docker.sh). Prints the image id.
set -euo pipefail
IMAGE=${BASE_IMAGE:-shoal/node-base:20}

node_bin=$(readlink -f "$(command -v node)")
node_version=$("$node_bin" -v)
case "$node_version" in
  v20.*) ;;
  *) echo "build-base-image: the host's node is $node_version; this image wants Node 20" >&2; exit 1 ;;
esac
npm_dir=$(cd "$(dirname "$(readlink -f "$(command -v npm)")")/.." && pwd)

if [ -z "${FORCE:-}" ] &&
  have=$(docker image inspect --format '{{index .Config.Labels "org.shoal.node-version"}}' "$IMAGE" 2>/dev/null) &&
  [ "$have" = "$node_version" ]; then
  docker image inspect --format '{{.Id}}' "$IMAGE"
  exit 0
fi

# A static busybox: Debian's busybox-static puts it at /bin/busybox (it replaces the dynamic one).
is_static() { [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; }
if ! is_static; then
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y -qq busybox-static >/dev/null 2>&1; then
    apt-get update -qq
    apt-get install -y -qq busybox-static >/dev/null
  fi
  is_static || { echo "build-base-image: /bin/busybox is not a static binary" >&2; exit 1; }
fi
setpriv_bin=$(command -v setpriv) || { echo "build-base-image: setpriv (util-linux) is missing" >&2; exit 1; }

root=$(mktemp -d /tmp/shoal-node-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
# Debian 12's merged /usr: /bin, /sbin, /lib and /lib64 are links into /usr.
mkdir -p "$root"/usr/{bin,sbin,lib,lib64} "$root"/usr/local/{bin,lib/node_modules} \
  "$root"/{etc,proc,sys,dev,root,home/node,run,var/tmp}
for d in bin sbin lib lib64; do ln -s "usr/$d" "$root/$d"; done
install -d -m 1777 "$root/tmp"

# Programs and every shared library they load (ldd prints "name => /path (addr)" or "/path (addr)").
copy_libs() {
  ldd "$1" | awk '/=>/ { print $3; next } /^\t\// { print $1 }' | while read -r lib; do
    [ -n "$lib" ] && [ -e "$lib" ] || continue
    dest="$root/usr${lib#/usr}"
    mkdir -p "$(dirname "$dest")"
    cp -L "$lib" "$dest"
  done
}
cp "$node_bin" "$root/usr/local/bin/node"
copy_libs "$node_bin"
cp "$setpriv_bin" "$root/usr/bin/setpriv"
copy_libs "$setpriv_bin"

# npm, as the official image has it (without its docs).
mkdir -p "$root/usr/local/lib/node_modules/npm"
tar -C "$npm_dir" --exclude=./docs --exclude=./man -c . | tar -C "$root/usr/local/lib/node_modules/npm" -x
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"

# busybox and a link for every applet, except where a real program is already in place.
cp /bin/busybox "$root/usr/bin/busybox"
/bin/busybox --list-full | while read -r applet; do
  name=$(basename "$applet")
  [ "$name" = busybox ] && continue
  [ -e "$root/usr/bin/$name" ] || [ -e "$root/usr/sbin/$name" ] || [ -e "$root/usr/local/bin/$name" ] && continue
  case "$applet" in
    */sbin/*) ln -s ../bin/busybox "$root/usr/sbin/$name" ;;
    *) ln -s busybox "$root/usr/bin/$name" ;;
  esac
done

cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
node:x:1000:1000::/home/node:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
node:x:1000:
nogroup:x:65534:
EOF
printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$root/etc/nsswitch.conf"
chown 1000:1000 "$root/home/node"

tar --numeric-owner -C "$root" -c . |
  docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "ENV NODE_VERSION=${node_version#v}" \
    --change "LABEL org.shoal.node-version=$node_version" \
    --change 'CMD ["node"]' \
    --message "Node.js $node_version runtime from the host, static busybox" - "$IMAGE" >/dev/null

# Smoke test: node runs, npm answers, the shell and setpriv work.
docker run --rm "$IMAGE" sh -c 'node -e "process.exit(process.version.startsWith(\"v20.\") ? 0 : 1)" && npm -v >/dev/null && /usr/bin/setpriv --reuid=1000 --regid=1000 --clear-groups id -u | grep -qx 1000' ||
  { echo "build-base-image: smoke test of $IMAGE failed" >&2; docker image rm -f "$IMAGE" >/dev/null 2>&1; exit 1; }

docker image inspect --format '{{.Id}}' "$IMAGE"
