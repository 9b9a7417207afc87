#!/bin/sh
# A lab node's first process: starts this node's own Docker engine, waits until it answers, then
# runs the command given (the node's shoald; `sleep infinity` by default). Stopping the container
# (`shoal lab stop`) takes the engine and every task container with it, as powering off a host does.
set -eu
rm -f /var/run/docker.pid /run/docker/containerd/containerd.pid 2>/dev/null || true
dockerd --host unix:///var/run/docker.sock >/var/log/dockerd.log 2>&1 &
i=0
until docker info >/dev/null 2>&1; do
  i=$((i + 1))
  if [ "$i" -gt 60 ]; then
    echo "lab-node: dockerd did not answer within 60 s:" >&2
    tail -20 /var/log/dockerd.log >&2
    exit 1
  fi
  sleep 1
done
exec "$@"
