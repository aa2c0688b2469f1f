#!/usr/bin/env bash
# Runs the privilege-separated web server (tests/c/sthread-httpd.c) and shows its
# three answers: a signed page, the parser's bug aimed at the key (the request's
# sthread is stopped; no key bytes come back), and a path out of the document root.
# Run inside the lane by scripts/demo: scripts/vm-run apps/sthread/demo/httpd-demo.sh BIN
set -euo pipefail
bin=$1
dir=$(mktemp -d)
mkdir "$dir/www"
echo "<h1>hello from an sthread</h1>" >"$dir/www/index.html"
echo -n "PRIVATE-KEY-$RANDOM$RANDOM" >"$dir/key"
port=$((20000 + RANDOM % 20000))
"$bin" "$port" "$dir/www" "$dir/key" 3 >"$dir/out" 2>"$dir/err" &
for _ in $(seq 100); do grep -q "key at" "$dir/out" 2>/dev/null && break; sleep 0.1; done
key_addr=$(sed -n 's/.*key at 0x\([0-9a-f]*\).*/\1/p' "$dir/out")
ask() {
	exec 3<>"/dev/tcp/127.0.0.1/$port"
	printf '%b' "$1" >&3
	cat <&3 | tr -d '\r'
	exec 3>&-
}
echo "-- GET /index.html"
ask 'GET /index.html HTTP/1.0\r\n\r\n'
echo "-- the parser's bug, aimed at the key (X-Debug: $key_addr)"
ask "GET /index.html HTTP/1.0\r\nX-Debug: $key_addr\r\n\r\n"
echo "-- GET /../key"
ask 'GET /../key HTTP/1.0\r\n\r\n'
wait
echo "-- server:"
cat "$dir/out" "$dir/err"
if grep -rqF "$(cat "$dir/key")" "$dir/out"; then echo "KEY LEAKED"; exit 1; fi
rm -rf "$dir"
