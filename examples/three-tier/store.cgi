#!/bin/sh
# The store: one counter in its volume; `?incr` adds one.
echo "Content-Type: text/plain"
echo
n=$(cat /data/count 2>/dev/null || echo 0)
if [ "$QUERY_STRING" = incr ]; then
  n=$((n + 1))
  echo "$n" > /data/count.new && mv /data/count.new /data/count
fi
echo "$n"
