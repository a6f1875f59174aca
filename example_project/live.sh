#!/usr/bin/env bash
# The live offer board and guest page on this machine: a local soketi (Pusher protocol)
# plus the example project sending to it, with demo hotels, staff and offers.
#
#   bash example_project/live.sh
#
# then open http://127.0.0.1:8000/ (links to every page), or the staff board
# http://127.0.0.1:8000/staff/ and log in with a user and password it prints,
# and the guest page http://127.0.0.1:8000/hotels/killarney/offers/ (no login). Change
# offers in a second tab, the admin or with the printed curl: every open board and guest
# page of that hotel updates. Ctrl-C stops both servers.
#
# Audiences are on: the staff board listens on the private channel private-hotel-<slug>
# (every offer, the staff serializer), the guest page on the public hotel-<slug> (active
# offers only, hotel.serializers.OfferPublicSerializer). OFFER_REALTIME_PUBLIC_SERIALIZER=""
# turns them off (then OFFER_REALTIME_CHANNEL=hotel-{hotel_slug} gives today's one channel).
# In private mode the board also joins presence-hotel-<slug>: who is online and "X is
# editing" markers (client events, which soketi is started with).
#
# Environment: PYTHON (default .venv/bin/python, else python3), DJANGO_PORT (8000),
# SOKETI_PORT (6001), SOKETI_METRICS_PORT and SOKETI_CLUSTER_PORT (soketi's metrics server
# and its UDP cluster discovery; default SOKETI_PORT + 3600 and + 5001, or minus that when
# the sum would pass 65535), OFFER_REALTIME_CHANNEL (default private-hotel-{hotel_slug}),
# OFFER_REALTIME_PUBLIC_SERIALIZER (default hotel.serializers.OfferPublicSerializer).
# Needs Node >= 20 and npm; the Node packages come from the lock files.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
DJANGO_PORT=${DJANGO_PORT:-8000}
SOKETI_PORT=${SOKETI_PORT:-6001}
SOKETI_BIN=tests/e2e/node_modules/@soketi/soketi/bin/server.js

# soketi opens two more ports next to its own. Near the top of the range "next to" must
# go down: port + 5001 past 65535 made soketi crash at start (ERR_SOCKET_BAD_PORT).
side_port() { if [ $(($1 + $2)) -le 65535 ]; then echo $(($1 + $2)); else echo $(($1 - $2)); fi; }
SOKETI_METRICS_PORT=${SOKETI_METRICS_PORT:-$(side_port "$SOKETI_PORT" 3600)}
SOKETI_CLUSTER_PORT=${SOKETI_CLUSTER_PORT:-$(side_port "$SOKETI_PORT" 5001)}
for port in "$DJANGO_PORT" "$SOKETI_PORT" "$SOKETI_METRICS_PORT" "$SOKETI_CLUSTER_PORT"; do
  case $port in
    ''|*[!0-9]*) printf '[live] not a port number: %s\n' "$port"; exit 1 ;;
  esac
  if [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then printf '[live] port %s is outside 1-65535\n' "$port"; exit 1; fi
done

say() { printf '[live] %s\n' "$*"; }
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

[ -f "$SOKETI_BIN" ] || { say "installing soketi (npm ci --prefix tests/e2e)"; npm ci --prefix tests/e2e --no-audit --no-fund --loglevel=error; }
[ -f example_project/node_modules/pusher-js/dist/web/pusher.min.js ] || {
  say "installing pusher-js (npm ci --prefix example_project)"
  npm ci --prefix example_project --no-audit --no-fund --loglevel=error
}
# soketi binds with SO_REUSEPORT: a second one would silently share a busy port.
if port_busy "$SOKETI_PORT"; then say "port $SOKETI_PORT is in use; set SOKETI_PORT"; exit 1; fi
if port_busy "$DJANGO_PORT"; then say "port $DJANGO_PORT is in use; set DJANGO_PORT"; exit 1; fi

# Local-only credentials, shared by soketi and the example project's PUSHER_* settings.
export PUSHER_APP_ID=100001 PUSHER_KEY=local-board-key PUSHER_SECRET=local-board-secret
export PUSHER_HOST=127.0.0.1 PUSHER_PORT=$SOKETI_PORT PUSHER_SSL=false

# Audiences: staff on the private channel, guests on the public one (see above).
staff_channel='private-hotel-{hotel_slug}'
export OFFER_REALTIME_CHANNEL=${OFFER_REALTIME_CHANNEL:-$staff_channel}
export OFFER_REALTIME_PUBLIC_SERIALIZER=${OFFER_REALTIME_PUBLIC_SERIALIZER-hotel.serializers.OfferPublicSerializer}

workdir=$(mktemp -d)
soketi_pid=
cleanup() {
  if [ -n "$soketi_pid" ]; then kill "$soketi_pid" 2>/dev/null || true; wait "$soketi_pid" 2>/dev/null || true; fi
  rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The same settings as the test harness (tests/e2e/harness.py): Pusher's limits, and
# cluster discovery kept on loopback instead of broadcasting on the network.
printf '{"cluster.address": "127.0.0.1"}' >"$workdir/config.json"
(
  # soketi reads a .env from its working directory; the empty work dir has none.
  cd "$workdir"
  exec env SOKETI_HOST=127.0.0.1 SOKETI_PORT="$SOKETI_PORT" SOKETI_METRICS_HOST=127.0.0.1 \
    SOKETI_METRICS_SERVER_PORT="$SOKETI_METRICS_PORT" \
    SOKETI_DEFAULT_APP_ID="$PUSHER_APP_ID" SOKETI_DEFAULT_APP_KEY="$PUSHER_KEY" \
    SOKETI_DEFAULT_APP_SECRET="$PUSHER_SECRET" \
    SOKETI_CLUSTER_PORT="$SOKETI_CLUSTER_PORT" SOKETI_CLUSTER_UNICAST_ADDRESSES="127.0.0.1:$SOKETI_CLUSTER_PORT" \
    SOKETI_EVENT_MAX_SIZE_IN_KB=10 SOKETI_EVENT_MAX_BATCH_SIZE=10 SOKETI_CHANNEL_LIMITS_MAX_NAME_LENGTH=164 \
    SOKETI_DEFAULT_APP_ENABLE_CLIENT_MESSAGES=true SOKETI_DEFAULT_APP_MAX_CLIENT_EVENTS_PER_SEC=10 \
    PM2_HOME="$workdir/pm2" AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE=1 \
    node "$ROOT/$SOKETI_BIN" start --config="$workdir/config.json"
) >"$workdir/soketi.log" 2>&1 &
soketi_pid=$!
for _ in $(seq 100); do
  port_busy "$SOKETI_PORT" && break
  kill -0 "$soketi_pid" 2>/dev/null || { cat "$workdir/soketi.log"; say "soketi did not start"; exit 1; }
  sleep 0.1
done
port_busy "$SOKETI_PORT" || { cat "$workdir/soketi.log"; say "soketi did not open port $SOKETI_PORT"; exit 1; }
say "soketi on 127.0.0.1:$SOKETI_PORT (log: $workdir/soketi.log)"

"$PYTHON" example_project/manage.py migrate --noinput -v 0
# It prints the staff and admin logins, the same on every run, and a curl for this port.
"$PYTHON" example_project/manage.py demo_data --base-url "http://127.0.0.1:$DJANGO_PORT"
say "staff board: http://127.0.0.1:$DJANGO_PORT/staff/  (log in as above)"
for slug in killarney galway; do
  say "guest page:  http://127.0.0.1:$DJANGO_PORT/hotels/$slug/offers/  (no login)"
done
if [ -n "$OFFER_REALTIME_PUBLIC_SERIALIZER" ]; then
  say "audiences: staff on $OFFER_REALTIME_CHANNEL, guests on hotel-{hotel_slug} (active offers, $OFFER_REALTIME_PUBLIC_SERIALIZER)"
fi
say "Ctrl-C stops Django and soketi"
"$PYTHON" example_project/manage.py runserver "127.0.0.1:$DJANGO_PORT"
