#!/usr/bin/env bash
# Builds the test workload image `shoal/busybox:latest` offline (no image registry is reachable
# here): a minimal root filesystem made of Debian's static busybox, `docker import`ed.
# Idempotent and fast when the image already exists. Needs root (apt-get) and a running Docker
# engine (scripts/ensure-docker.sh). Prints the image id.
#
# The image: /bin/busybox plus a symlink for every applet (sh, httpd, sleep, echo, cat, ls, ...),
# /tmp, /etc/passwd and /etc/group, CMD ["/bin/sh"], WORKDIR /www, where
#   /www/index.html          a static page ("shoal-busybox ok"), so `httpd -f -p 8080` serves GET /
#   /www/cgi-bin/hostname    a CGI answering the container's hostname (which replica answered)
set -euo pipefail
IMAGE=shoal/busybox:latest

if id=$(docker image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null); then
  echo "$id"
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
  is_static || { echo "build-test-image: /bin/busybox is not a static binary" >&2; exit 1; }
fi

root=$(mktemp -d /tmp/shoal-busybox.XXXXXX)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,root,www/cgi-bin,var/log}
install -d -m 1777 "$root/tmp"
cp /bin/busybox "$root/bin/busybox"
# `busybox --list-full` gives every applet's path (bin/sh, usr/sbin/httpd, ...): link each one.
/bin/busybox --list-full | while read -r applet; do
  [ "$applet" = bin/busybox ] && continue
  mkdir -p "$root/$(dirname "$applet")"
  ln -sf /bin/busybox "$root/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
echo 'shoal-busybox ok' >"$root/www/index.html"
printf '#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\n"\nhostname\n' >"$root/www/cgi-bin/hostname"
chmod 755 "$root/www/cgi-bin/hostname"

tar --numeric-owner --owner=0 --group=0 -C "$root" -c . |
  docker import --change 'CMD ["/bin/sh"]' --change 'WORKDIR /www' \
    --message 'shoal test workload: static busybox' - "$IMAGE" >/dev/null

# Smoke test: the applets run, and httpd serves a file.
docker run --rm "$IMAGE" sh -c 'echo hello && ls /bin/sh >/dev/null && httpd --help 2>&1 | grep -qi usage' >/dev/null ||
  { echo "build-test-image: smoke test of $IMAGE failed" >&2; docker image rm -f "$IMAGE" >/dev/null 2>&1; exit 1; }
docker run --rm "$IMAGE" sh -c 'httpd -p 127.0.0.1:8080 && sleep 0.2 && wget -q -O - http://127.0.0.1:8080/' |
  grep -q 'shoal-busybox ok' ||
  { echo "build-test-image: httpd in $IMAGE did not serve /www/index.html" >&2; docker image rm -f "$IMAGE" >/dev/null 2>&1; exit 1; }

docker image inspect --format '{{.Id}}' "$IMAGE"
