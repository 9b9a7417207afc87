#!/bin/sh
# The API: reads its secret and its config, counts the call in the store.
# CRLF: the header goes out as the script writes it, and HTTP clients want CRLF.
printf 'Content-Type: text/plain\r\n\r\n'
token=$(cat /run/secrets/api_token)
greeting=$(cat /etc/api/greeting.txt)
count=$(timeout 5 wget -q -O - "http://store/cgi-bin/store?incr" 2>&1)
echo "api=$(hostname) greeting=$greeting token_length=${#token} count=$count"
