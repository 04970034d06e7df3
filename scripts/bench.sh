#!/usr/bin/env bash
# `make bench`: cold-start time of the release create-user binary, local secrets vs moto.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/venv.sh
moto_dir=$(mktemp -d /tmp/provisioning-moto.XXXXXX)
trap 'scripts/moto.sh stop "$moto_dir"; rm -rf "$moto_dir"' EXIT INT TERM
TEST_MOTO_URL=$(scripts/moto.sh start "$moto_dir")
export TEST_MOTO_URL
cargo build --release --locked --bins
"target/release/coldstart"
