#!/bin/sh
# Benchmarks of the update server against nginx serving the same files, with
# the same wrk settings, measured in the same run; and report ingestion into
# SQLite. Not part of the test suite. Usage: bench/server/run.sh [seconds]
# Prints a Markdown table for docs/BENCHMARKS.md.
set -eu
DUR=${1:-10}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
W=$(mktemp -d /tmp/bulwark-bench-server.XXXXXX)
trap 'kill $BW_PID $NGINX_PID $SITE_PID 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$W"' EXIT
BW_PID= NGINX_PID= SITE_PID=

# Peers: installed here, never in the test run.
if ! command -v nginx >/dev/null || ! command -v wrk >/dev/null; then
	apt-get install -y nginx-light wrk >/dev/null
fi

cd "$ROOT"
go build -o "$W/bulwark" ./cmd/bulwark
go build -o "$W/ingest" ./bench/server/ingest

# A vendor repository with one small update and one 256 MiB payload.
cd "$W"
./bulwark repo init vendor --name example >/dev/null
mkdir upd
head -c $((256 << 20)) /dev/urandom > upd/big.bin
cat > upd/BW-1.yaml <<YAML
id: BW-1
title: benchmark payload
product: debian-12
classification: security
severity: critical
released: 2026-11-20
reboot: never
installer:
  type: archive
  prefix: /opt/bench
payloads:
  - file: big.bin
YAML
./bulwark repo publish vendor upd/BW-1.yaml >/dev/null
BIG=$(cd vendor/targets && ls updates/BW-1/*.big.bin)

# bulwark: HTTPS on 18443 and plain HTTP (repositories only) on 18080.
./bulwark server --data-dir data --listen 127.0.0.1:18443 --http 127.0.0.1:18080 \
	--vendor example=vendor --admin-token-file bw.token --log-level warn >server.out 2>server.err &
BW_PID=$!
for i in $(seq 100); do [ -f data/server.url ] && break; sleep 0.1; done

# nginx: the same files, same certificate, sendfile on, no access log.
cat > nginx.conf <<NGX
worker_processes auto;
daemon off;
pid $W/nginx.pid;
error_log $W/nginx.err;
events { worker_connections 4096; }
http {
	access_log off;
	sendfile on;
	tcp_nopush on;
	types { application/json json; }
	default_type application/octet-stream;
	server { listen 127.0.0.1:28080; root $W/vendor; }
	server {
		listen 127.0.0.1:28443 ssl;
		ssl_certificate $W/data/tls/server.crt;
		ssl_certificate_key $W/data/tls/server.key;
		root $W/vendor;
	}
}
NGX
chmod 755 "$W" "$W/vendor" # nginx workers run as nobody; keys/ stays 0700
nginx -c "$W/nginx.conf" -p "$W" &
NGINX_PID=$!
sleep 1

# Both must serve the same bytes, or the comparison is meaningless.
K="--cacert $W/data/tls/ca.crt"
for pair in "http://127.0.0.1:18080/repos/example/metadata/timestamp.json http://127.0.0.1:28080/metadata/timestamp.json" \
	"https://127.0.0.1:18443/repos/example/targets/$BIG https://127.0.0.1:28443/targets/$BIG"; do
	set -- $pair
	curl -sf $K "$1" -o a.out && curl -sf $K "$2" -o b.out && cmp -s a.out b.out || { echo "bench: $1 and $2 differ or fail" >&2; exit 1; }
done
rm -f a.out b.out

rps() { wrk -t2 -c"$2" -d"${DUR}s" "$1" | awk '/Requests\/sec/ {print $2}'; }
tput() { wrk -t2 -c"$2" -d"${DUR}s" "$1" | awk '/Transfer\/sec/ {print $2}'; }

echo "| measurement | bulwark | nginx | ratio |"
echo "|---|---|---|---|"
row() {
	b=$1 n=$2
	r=$(awk -v b="$b" -v n="$n" 'function v(x){u=substr(x,length(x)-1); m=1; if(u=="GB")m=1024; else if(u=="KB")m=1/1024; sub(/[A-Z]+$/,"",x); return x*m} BEGIN{printf "%.2f", v(b)/v(n)}')
	echo "| $3 | $b | $n | ${r}× |"
}
row "$(rps http://127.0.0.1:18080/repos/example/metadata/timestamp.json 32)" "$(rps http://127.0.0.1:28080/metadata/timestamp.json 32)" "timestamp.json requests/s, HTTP, 32 connections"
row "$(rps https://127.0.0.1:18443/repos/example/metadata/timestamp.json 32)" "$(rps https://127.0.0.1:28443/metadata/timestamp.json 32)" "timestamp.json requests/s, HTTPS, 32 connections"
row "$(tput http://127.0.0.1:18080/repos/example/targets/$BIG 4)" "$(tput http://127.0.0.1:28080/targets/$BIG 4)" "256 MiB payload throughput, HTTP, 4 connections"
row "$(tput https://127.0.0.1:18443/repos/example/targets/$BIG 4)" "$(tput https://127.0.0.1:28443/targets/$BIG 4)" "256 MiB payload throughput, HTTPS, 4 connections"

# A site server syncing from this one: a sync with nothing new, as each run
# records it (median of 5; the first full sync fetches the 256 MiB payload).
CA=$(./bulwark admin --data-dir data --token-file bw.token status -o json | sed -n 's/.*"ca_fingerprint": "\([^"]*\)".*/\1/p')
ROOTSUM=sha256:$(sha256sum vendor/metadata/1.root.json | cut -c1-64)
./bulwark server --data-dir site --listen 127.0.0.1:19443 --upstream https://127.0.0.1:18443 --upstream-ca "$CA" \
	--upstream-vendor "example=$ROOTSUM" --admin-token-file site.token --log-level warn >site.out 2>site.err &
SITE_PID=$!
./bulwark admin --data-dir site --token-file site.token --wait 60s sync run --follow >/dev/null
for i in 1 2 3 4 5; do
	./bulwark admin --data-dir site --token-file site.token sync run --follow -o json
done | python3 -c '
import json, sys, datetime, statistics
dec, text, ms = json.JSONDecoder(), sys.stdin.read(), []
i = 0
while i < len(text):
    if text[i].isspace():
        i += 1
        continue
    obj, i = dec.raw_decode(text, i)
    for r in obj["runs"]:
        p = lambda s: datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))
        ms.append((p(r["finished_at"]) - p(r["started_at"])).total_seconds() * 1000)
print("| site server sync with nothing new, over HTTPS from an upstream server (median of 5; goal ≤ 200 ms) | %.0f ms | | |" % statistics.median(ms))
'
kill $SITE_PID; wait $SITE_PID 2>/dev/null || true

# Report ingestion straight into the SQLite store (10 state changes a batch).
for wr in 1 8 64; do
	./ingest -dir "$W/ingest-db-$wr" -duration "${DUR}s" -writers "$wr"
done
