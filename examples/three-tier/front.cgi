#!/bin/sh
# The front end: asks the API, by its short name, and says who answered.
echo "Content-Type: text/plain"
echo
echo "front=$(hostname) color=$COLOR $(timeout 5 wget -q -O - http://api/cgi-bin/api 2>&1)"
