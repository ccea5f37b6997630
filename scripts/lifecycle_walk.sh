#!/bin/bash
# A new user's walk through the package lifecycle on three local nodes (a mirror, a user, a
# short-lived CI publisher), printing each command and its real output. Everything runs on
# 127.0.0.1 in a fresh temp dir. Build first: cargo build -p peerpack
PP=${PEERPACK:-$(cd "$(dirname "$0")/.." && pwd)/target/debug/peerpack}
W=$(mktemp -d "${TMPDIR:-/tmp}/peerpack-walk.XXXXXX")
export RUST_LOG=warn
# Stop every node this script started, however it ends.
trap 'for p in "$W"/*.pid; do kill "$(cat "$p")" 2>/dev/null; done' EXIT
echo "(working in $W)"
run() { echo "\$ peerpack $*"; "$PP" "$@" 2>&1; echo "[exit $?]"; echo; }
start() { # dir
  "$PP" --data-dir "$1" node --listen /ip4/127.0.0.1/tcp/0 > "$1.log" 2>&1 &
  echo $! > "$1.pid"
  for i in $(seq 100); do [ -s "$1/node.json" ] && break; sleep 0.1; done
}
stop() { kill "$(cat "$1.pid")"; for i in $(seq 50); do kill -0 "$(cat "$1.pid")" 2>/dev/null || break; sleep 0.1; done; }
addr() { python3 -c "import json,sys;print(json.load(open(sys.argv[1]+'/node.json'))['listen_addrs'][0])" "$1"; }

mkdir -p $W/work && cd $W/work
echo "## 1. A package"
run init my-template --description "An axum service with CI" --author "Ada <ada@example.org>"
mkdir -p my-template/src && echo 'fn main() { println!("hi"); }' > my-template/src/main.rs
echo "SECRET_TOKEN=abc" > my-template/.env
mkdir -p my-template/node_modules/x && echo junk > my-template/node_modules/x/i.js
run pack my-template --list

echo "## 2. A mirror, and a CI job that publishes and exits"
start $W/mirror; start $W/user
"$PP" --data-dir $W/ci keygen >/dev/null
CI_KEY=$("$PP" --data-dir $W/ci whoami --json | python3 -c "import json,sys;print(json.load(sys.stdin)['publisher'])")
run --data-dir $W/mirror mirror --owner "$CI_KEY"
start $W/ci
"$PP" --data-dir $W/ci bootstrap "$(addr $W/mirror)" >/dev/null
"$PP" --data-dir $W/user bootstrap "$(addr $W/mirror)" >/dev/null
run --data-dir $W/ci publish my-template --wait-replicas 1
stop $W/ci
echo "(the CI node has exited)"; echo

echo "## 3. Install, verify, repair"
mkdir -p $W/project && cd $W/project
for i in $(seq 50); do "$PP" --data-dir $W/user info my-template >/dev/null 2>&1 && break; sleep 0.2; done
run --data-dir $W/user search my-templ
run --data-dir $W/user install my-template
cat peerpack.lock; echo
run --data-dir $W/user verify
echo "// local edit" >> peerpack_packages/my-template/src/main.rs
run --data-dir $W/user verify
run --data-dir $W/user install --repair
run --data-dir $W/user verify

echo "## 4. A new version, outdated, update"
cd $W/work && sed -i 's/^version = "0.1.0"/version = "0.2.0"/' my-template/peerpack.toml
start $W/ci; "$PP" --data-dir $W/ci bootstrap "$(addr $W/mirror)" >/dev/null
run --data-dir $W/ci publish my-template --wait-replicas 1
cd $W/project
for i in $(seq 50); do "$PP" --data-dir $W/user info my-template@0.2.0 >/dev/null 2>&1 && break; sleep 0.2; done
run --data-dir $W/user outdated
run --data-dir $W/user update

echo "## 5. Yank"
run --data-dir $W/ci yank my-template@0.2.0 --reason "the CI workflow is broken"
run --data-dir $W/user yank my-template@0.1.0
stop $W/ci
for i in $(seq 50); do "$PP" --data-dir $W/user info my-template --json | grep -q '"yanked":"the CI' && break; sleep 0.2; done
run --data-dir $W/user info my-template
mkdir -p $W/fresh && cd $W/fresh
run --data-dir $W/user install my-template
cd $W/project
run --data-dir $W/user install

echo "## 6. Remove"
run --data-dir $W/user list
run --data-dir $W/user remove my-template
ls peerpack_packages; cat peerpack.lock
stop $W/user; stop $W/mirror
