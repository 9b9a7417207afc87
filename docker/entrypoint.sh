#!/bin/sh
# The Shoal image's entrypoint (POSIX sh: busybox in shoal/node-base, dash in Debian's node image).
#
# With arguments, runs them:   docker run --rm IMAGE shoal --host HOST:PORT node ls
# Without, runs this container's node, the way docker-compose.yml uses it:
#   - DATA_DIR/node.json exists (a restart):   shoald run
#   - else SHOAL_BOOTSTRAP=init:               shoald init, a new cluster
#   - else SHOAL_BOOTSTRAP=manager|worker:     waits for that join token in SHOAL_TOKEN_DIR (a volume
#                                              shared with the init node), then shoald join
# The init node writes both join tokens to SHOAL_TOKEN_DIR (manager.token, worker.token) each time
# it starts, once its control API answers; before a fresh init it removes any old ones, so nobody
# picks up another cluster's token (a join with a stale token fails, and the restart policy retries).
#
# Variables (defaults in brackets):
#   SHOAL_BOOTSTRAP        init | manager | worker: what a node without state does first
#   SHOAL_DATA_DIR         [/var/lib/shoal] the node's identity, Raft log and store (a volume)
#   SHOAL_TOKEN_DIR        [/var/lib/shoal-bootstrap] where join tokens are handed over
#   SHOAL_LISTEN_ADDR      [0.0.0.0:4242]
#   SHOAL_ADVERTISE_ADDR   [$(hostname):4242] how the other nodes reach this one
#   SHOAL_JOIN_ADDR        [manager1:4242] the manager to join through
#   SHOAL_HOSTNAME         [$(hostname)] the node's name in `shoal node ls`
#   SHOAL_AVAILABILITY     active | pause | drain (shoald's default: active)
#   SHOAL_DISPATCHER_HEARTBEAT  e.g. 1s (init only)
#   SHOAL_TOKEN_WAIT       [300] seconds to wait for a join token before giving up (exit 1)
#   SHOAL_JOIN_TOKEN       the join token itself, for a node that shares no SHOAL_TOKEN_DIR with the
#                          init node (a `shoal lab` host): written to the token file, then as above
#
# Started as root (the image's default), it first re-runs itself as the user `shoal` with the
# Docker socket's group (the agent drives the engine through /var/run/docker.sock), via setpriv;
# SHOAL_AS_ROOT=1 keeps root. Started as another user (`--user`), it runs as that user (give it
# the socket's group with --group-add).
set -eu

SHOAL_DATA_DIR=${SHOAL_DATA_DIR:-/var/lib/shoal}
SHOAL_TOKEN_DIR=${SHOAL_TOKEN_DIR:-/var/lib/shoal-bootstrap}
DOCKER_SOCKET=${DOCKER_HOST:-unix:///var/run/docker.sock}
DOCKER_SOCKET=${DOCKER_SOCKET#unix://}

log() { echo "shoal-entrypoint: $*" >&2; }

# Run as root (SHOAL_AS_ROOT), the node still needs both directories; as `shoal`, they are made below.
if [ "$(id -u)" = 0 ]; then mkdir -p "$SHOAL_DATA_DIR" "$SHOAL_TOKEN_DIR" && chmod 700 "$SHOAL_DATA_DIR"; fi

if [ "$(id -u)" = 0 ] && [ -z "${SHOAL_AS_ROOT:-}" ]; then
  uid=$(id -u shoal 2>/dev/null || echo 10001)
  gid=$(id -g shoal 2>/dev/null || echo 10001)
  for d in "$SHOAL_DATA_DIR" "$SHOAL_TOKEN_DIR"; do
    mkdir -p "$d"
    # A volume made by an older image, or bind-mounted: hand it to the user.
    [ "$(stat -c %u "$d")" = "$uid" ] || chown -R "$uid:$gid" "$d"
  done
  chmod 700 "$SHOAL_DATA_DIR"
  groups=$gid
  if [ -S "$DOCKER_SOCKET" ]; then groups="$gid,$(stat -c %g "$DOCKER_SOCKET")"; fi
  # (An absolute path: busybox's sh would run its own setpriv applet, which cannot change users.)
  exec /usr/bin/setpriv --reuid="$uid" --regid="$gid" --groups="$groups" --inh-caps=-all -- "$0" "$@"
fi

[ "$#" -gt 0 ] && exec "$@"

host=$(hostname)
LISTEN=${SHOAL_LISTEN_ADDR:-0.0.0.0:4242}
ADVERTISE=${SHOAL_ADVERTISE_ADDR:-$host:4242}
JOIN_ADDR=${SHOAL_JOIN_ADDR:-manager1:4242}
NAME=${SHOAL_HOSTNAME:-$host}

if [ -S "$DOCKER_SOCKET" ] && [ ! -w "$DOCKER_SOCKET" ]; then
  log "warning: $DOCKER_SOCKET is not writable by $(id -un) (groups: $(id -G)): this node cannot run tasks"
fi

# Writes FILE atomically (the readers are other containers).
write_token() {
  umask 077
  printf '%s\n' "$2" >"$1.tmp" && mv -f "$1.tmp" "$1"
}

# In the background: once the local control API answers, hand both join tokens over.
publish_tokens() {
  (
    while :; do
      if m=$(shoal swarm join-token manager -q 2>/dev/null) && w=$(shoal swarm join-token worker -q 2>/dev/null) &&
        [ -n "$m" ] && [ -n "$w" ]; then
        write_token "$SHOAL_TOKEN_DIR/manager.token" "$m"
        write_token "$SHOAL_TOKEN_DIR/worker.token" "$w"
        log "join tokens written to $SHOAL_TOKEN_DIR"
        exit 0
      fi
      sleep 1
    done
  ) &
}

if [ -f "$SHOAL_DATA_DIR/node.json" ]; then
  log "$SHOAL_DATA_DIR holds a node: shoald run"
  [ "${SHOAL_BOOTSTRAP:-}" = init ] && publish_tokens
  exec shoald run --data-dir "$SHOAL_DATA_DIR"
fi

case "${SHOAL_BOOTSTRAP:-}" in
  init)
    rm -f "$SHOAL_TOKEN_DIR/manager.token" "$SHOAL_TOKEN_DIR/worker.token"
    set -- init --data-dir "$SHOAL_DATA_DIR" --listen-addr "$LISTEN" --advertise-addr "$ADVERTISE" --hostname "$NAME"
    [ -n "${SHOAL_DISPATCHER_HEARTBEAT:-}" ] && set -- "$@" --dispatcher-heartbeat "$SHOAL_DISPATCHER_HEARTBEAT"
    ;;
  manager | worker)
    file="$SHOAL_TOKEN_DIR/$SHOAL_BOOTSTRAP.token"
    if [ -n "${SHOAL_JOIN_TOKEN:-}" ] && [ ! -s "$file" ]; then write_token "$file" "$SHOAL_JOIN_TOKEN"; fi
    waited=0
    limit=${SHOAL_TOKEN_WAIT:-300}
    while [ ! -s "$file" ]; do
      if [ "$waited" -ge "$limit" ]; then
        log "no $SHOAL_BOOTSTRAP join token in $file after ${limit}s (is the init node running?)"
        exit 1
      fi
      [ $((waited % 15)) = 0 ] && log "waiting for the $SHOAL_BOOTSTRAP join token in $file"
      sleep 1
      waited=$((waited + 1))
    done
    log "joining through $JOIN_ADDR as a $SHOAL_BOOTSTRAP"
    # --token-file keeps the token out of the process list.
    set -- join --data-dir "$SHOAL_DATA_DIR" --listen-addr "$LISTEN" --advertise-addr "$ADVERTISE" \
      --hostname "$NAME" --join-addr "$JOIN_ADDR" --token-file "$file"
    ;;
  *)
    log "$SHOAL_DATA_DIR holds no node and SHOAL_BOOTSTRAP is '${SHOAL_BOOTSTRAP:-}': set it to init, manager or worker (or pass a command)"
    exit 2
    ;;
esac
[ -n "${SHOAL_AVAILABILITY:-}" ] && set -- "$@" --availability "$SHOAL_AVAILABILITY"
[ "${SHOAL_BOOTSTRAP}" = init ] && publish_tokens
exec shoald "$@"
