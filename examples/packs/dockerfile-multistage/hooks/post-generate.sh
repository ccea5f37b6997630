#!/bin/sh
# Runs after generation: make sure the lock file exists for the cached layer.
set -eu
[ -f Cargo.lock ] || cargo generate-lockfile
