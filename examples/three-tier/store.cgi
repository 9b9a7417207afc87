#!/bin/sh
# The store: one counter in its volume; `?incr` adds one.
# CRLF: the header goes out as the script writes it, and HTTP clients want CRLF.
printf 'Content-Type: text/plain\r\n\r\n'
n=$(cat /data/count 2>/dev/null || echo 0)
if [ "$QUERY_STRING" = incr ]; then
  n=$((n + 1))
  echo "$n" > /data/count.new && mv /data/count.new /data/count
fi
echo "$n"
