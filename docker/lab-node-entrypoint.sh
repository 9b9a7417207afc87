#!/bin/sh
# A lab node's first process: starts this node's own Docker engine, waits until it answers, then
# boots the node as shoal-entrypoint (docker/entrypoint.sh) does: SHOAL_BOOTSTRAP=init|manager|worker
# the first time, `shoald run` on every later start; with arguments, runs them instead. Killing the
# container (`shoal lab stop`) takes the engine and every task container with it, as powering off
# a host does; starting it again boots the host: its engine, then its shoald.
# As a host's init restarts a daemon that exits (systemd's Restart=always), this process restarts
# shoald when it ends on its own or is killed (`kill $(cat /run/shoald.pid)` on the host restarts
# the daemon alone: the engine and the task containers run on). One that ends within its first
# 10 s (it cannot boot) is not restarted: the node stops, its last words in its log. While the
# file /run/shoald.hold exists, the restart waits (a daemon stopped for a while, as
# `systemctl stop shoald` then `start`).
# SHOAL_LAB_REGISTRY (ADDR:PORT, set by `shoal lab up`): the lab's registry, which this engine
# pulls from over plain HTTP (it serves no TLS: it lives on the lab's private network).
set -eu
rm -f /var/run/docker.pid /run/docker/containerd/containerd.pid 2>/dev/null || true
registry_flag=
if [ -n "${SHOAL_LAB_REGISTRY:-}" ]; then registry_flag="--insecure-registry=$SHOAL_LAB_REGISTRY"; fi
dockerd --host unix:///var/run/docker.sock ${registry_flag:+"$registry_flag"} >/var/log/dockerd.log 2>&1 &
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
[ "$#" -gt 0 ] && exec shoal-entrypoint "$@"
child=
stopping=
# `docker stop`: the signal goes to shoald, and this process ends with it.
trap 'stopping=1; [ -n "$child" ] && kill -TERM "$child" 2>/dev/null' TERM INT
while :; do
  started=$(date +%s)
  shoal-entrypoint &
  child=$!
  echo "$child" >/run/shoald.pid
  code=0
  wait "$child" || code=$?
  # (a trapped signal interrupts wait: wait again for shoald's own end)
  while kill -0 "$child" 2>/dev/null; do code=0; wait "$child" || code=$?; done
  rm -f /run/shoald.pid
  [ -n "$stopping" ] && exit "$code"
  if [ $(($(date +%s) - started)) -lt 10 ]; then
    echo "lab-node: shoald exited ($code) within 10 s of its start: not restarted" >&2
    exit "$code"
  fi
  echo "lab-node: shoald exited ($code): restarting it" >&2
  sleep 1
  while [ -e /run/shoald.hold ] && [ -z "$stopping" ]; do sleep 1; done
  [ -n "$stopping" ] && exit "$code"
done
