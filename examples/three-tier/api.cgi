#!/bin/sh
# The API: reads its secret and its config, counts the call in the store.
echo "Content-Type: text/plain"
echo
token=$(cat /run/secrets/api_token)
greeting=$(cat /etc/api/greeting.txt)
count=$(timeout 5 wget -q -O - "http://store/cgi-bin/store?incr" 2>&1)
echo "api=$(hostname) greeting=$greeting token_length=${#token} count=$count"
