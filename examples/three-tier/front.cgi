#!/bin/sh
# The front end: asks the API, by its short name, and says who answered.
# CRLF: the header goes out as the script writes it, and HTTP clients want CRLF.
printf 'Content-Type: text/plain\r\n\r\n'
echo "front=$(hostname) color=$COLOR $(timeout 5 wget -q -O - http://api/cgi-bin/api 2>&1)"
