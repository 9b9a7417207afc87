#!/bin/sh
# The image's HEALTHCHECK. A manager is healthy when its control API answers `shoal cluster status`
# (which needs a leader: a manager cut off from the majority is unhealthy); a worker, when its
# control socket answers at all (a worker's answer is the "not a manager" refusal).
DATA=${SHOAL_DATA_DIR:-/var/lib/shoal}
[ -f "$DATA/node.json" ] || { echo "no node in $DATA yet"; exit 1; }
export SHOAL_HOST="unix://$DATA/control.sock"
if grep -q '"role": *"manager"' "$DATA/node.json"; then
  exec shoal --timeout 8s cluster status >/dev/null
fi
out=$(shoal --timeout 8s node ls 2>&1) && exit 0
case "$out" in *"not a manager"*) exit 0 ;; esac
echo "$out"
exit 1
