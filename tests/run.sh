#!/usr/bin/env bash
# Runs every test, on a fresh Debian/Ubuntu machine that has only Rust.
#
# 1. Installs what the tests need when it is missing (apt-get): PostgreSQL
#    server binaries, GStreamer with gst-rtsp-server and the x264 encoder (the
#    camera simulator), ffmpeg and GStreamer's command-line tools (clients
#    of the relay), Chromium and node with playwright-core from npm (the
#    browser tests).
# 2. Starts a throwaway PostgreSQL on 127.0.0.1 (initdb in a temp dir, a free
#    port, trust auth for the loopback only).
# 3. Runs `cargo test --all-features`; every store and API test runs on SQLite
#    and on that PostgreSQL (CAMGATE_REQUIRE_POSTGRES=1 turns a missing server
#    into a failure instead of a skip).
# 4. Runs a 3-minute soak (benches/soak.rs) and every fuzz target for a
#    few seconds (fuzz/run.sh; cargo-fuzz on nightly Rust).
# 5. Stops and deletes what it started, also when a test fails.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n=== %s\n' "$*"; }

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

pg_bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

missing=()
[ -n "$(pg_bindir)" ] || missing+=(postgresql)
# The `gstreamer` feature (camera simulator): build headers and the plugins
# the simulator uses (x264enc is in -ugly, x265enc and the h264/h265 parsers
# in -bad, the RTP payloaders in -good).
# promtool (package prometheus) checks the /metrics exposition. The relay
# tests play our output with ffprobe/ffmpeg and GStreamer's rtspsrc
# (gst-launch-1.0 in -tools, avdec_h264 in -libav). The TLS test makes
# its certificates with openssl and talks to the listener with curl and
# openssl s_client.
for pkg in openssl curl fonts-wqy-zenhei pkg-config libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstrtspserver-1.0-dev \
           gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly prometheus \
           ffmpeg gstreamer1.0-tools gstreamer1.0-libav; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
# The browser tests: Debian's Chromium (with a Chinese font, for the UI's
# screenshots), driven by playwright-core (npm) on
# node. A node that is already there (with its npm) is used as it is.
[ -x /usr/bin/chromium ] || missing+=(chromium)
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    missing+=(nodejs npm)
fi
if [ ${#missing[@]} -gt 0 ]; then
    log "installing: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# The fuzz targets (fuzz/) build with cargo-fuzz on nightly Rust.
if ! cargo +nightly --version >/dev/null 2>&1; then
    log "installing the nightly toolchain (cargo fuzz needs it)"
    rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    log "cargo install cargo-fuzz"
    cargo install cargo-fuzz --locked 2>&1 | tail -n 1
fi
if [ ! -d tests/browser/node_modules/playwright-core ]; then
    log "npm ci (tests/browser: playwright-core)"
    npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
fi

PGBIN="$(pg_bindir)"
TMP="$(mktemp -d /tmp/camgate-tests.XXXXXX)"
PGDATA="$TMP/pgdata"
# PostgreSQL refuses to run as root: run it as the `postgres` user the
# package creates (or `nobody`), in a directory that user owns.
AS=()
if [ "$(id -u)" = 0 ]; then
    pguser=postgres
    id -u "$pguser" >/dev/null 2>&1 || pguser=nobody
    chown "$pguser" "$TMP"
    chmod 755 "$TMP"
    AS=(runuser -u "$pguser" --)
fi

cleanup() {
    status=$?
    if [ -f "$PGDATA/postmaster.pid" ]; then
        "${AS[@]}" "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate stop >/dev/null 2>&1 || true
    fi
    rm -rf "$TMP"
    exit $status
}
trap cleanup EXIT INT TERM

log "starting a throwaway PostgreSQL ($("$PGBIN/postgres" --version))"
# C.UTF-8 where the C library has it (Unicode character classes), else C.
if ! "${AS[@]}" "$PGBIN/initdb" -D "$PGDATA" -U camgate --auth=trust -E UTF8 --locale=C.UTF-8 >"$TMP/initdb.log" 2>&1; then
    rm -rf "$PGDATA"
    "${AS[@]}" "$PGBIN/initdb" -D "$PGDATA" -U camgate --auth=trust -E UTF8 --locale=C >"$TMP/initdb.log" 2>&1 \
        || { cat "$TMP/initdb.log"; exit 1; }
fi
started=""
for attempt in 1 2 3 4 5 6 7 8 9 10; do
    PGPORT=$(( 20000 + (RANDOM % 30000) ))
    if "${AS[@]}" "$PGBIN/pg_ctl" -D "$PGDATA" -l "$TMP/postgres.log" -w -t 30 start \
        -o "-p $PGPORT -k $TMP -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
        >/dev/null 2>&1; then
        started=1
        break
    fi
done
if [ -z "$started" ]; then
    echo "could not start PostgreSQL:"; cat "$TMP/postgres.log"; exit 1
fi
export CAMGATE_TEST_POSTGRES_URL="postgres://camgate@127.0.0.1:$PGPORT/postgres"
export CAMGATE_REQUIRE_POSTGRES=1
# Tools this script installed (promtool) must be used, never skipped.
export CAMGATE_REQUIRE_TOOLS=1
echo "PostgreSQL on 127.0.0.1:$PGPORT"

log "benches compile"
cargo check --all-features --benches 2>&1 | tail -n 1

log "cargo test --all-features (SQLite and PostgreSQL)"
cargo test --all-features 2>&1 | tee "$TMP/test.log"
test ${PIPESTATUS[0]} -eq 0 || exit 1

# The soak, short: 100 cameras with random faults and 100 churning viewers
# for 3 minutes (benches/soak.rs; the hour-long run is `cargo bench`).
log "soak: 3 minutes (SOAK_MINUTES=3 cargo test --all-features --bench soak)"
SOAK_MINUTES="${SOAK_MINUTES:-3}" cargo test --all-features --bench soak 2>&1 | tee "$TMP/soak.log"
test ${PIPESTATUS[0]} -eq 0 || exit 1

# Every fuzz target, briefly, on its seed corpus of real captures
# (fuzz/run.sh 60 is the acceptance run).
log "fuzz: every target for ${FUZZ_SECS:-10} s (fuzz/run.sh)"
fuzz/run.sh "${FUZZ_SECS:-10}"

# The demo as a machine with nothing but Rust builds it (no features: the
# clip replayed by camgate's own RTSP server), played in Chromium.
log "cargo test --test browser (no features: the Rust-only demo in Chromium)"
cargo test --test browser 2>&1 | tee -a "$TMP/test.log"
test ${PIPESTATUS[0]} -eq 0 || exit 1

# One closing line for the whole run: the totals over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed;?$/) p += $(i-1); if ($i ~ /^failed;?$/) f += $(i-1); if ($i ~ /^ignored;?$/) s += $(i-1) } }
     END { printf "\ntests: %d passed, %d failed, %d skipped\n", p, f, s }' "$TMP/test.log"
