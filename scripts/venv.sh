#!/usr/bin/env bash
# The project's Python tools in a project-local .venv, installed only when a requirements
# file changed since the last install (a stamp per file holds its hash). Quiet when current.
#   scripts/venv.sh          requirements-dev.txt (cfn-lint, moto, auth0-python, the SCIM conformance
#                            suites): what `make test` needs
#   scripts/venv.sh build    also requirements-build.txt (cargo-lambda, zig): `make build`, `make dev`
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.venv
files=(requirements-dev.txt)
case "${1:-}" in
  "") ;;
  build) files+=(requirements-build.txt) ;;
  *) echo "usage: scripts/venv.sh [build]" >&2; exit 2 ;;
esac

mkdir -p "$venv"
# `make test` and `make dev` may run at once: one installer at a time.
exec 9>"$venv/.lock"
flock 9

# A venv whose interpreter is gone (Python upgraded, tree copied) is made anew.
if ! "$venv/bin/python" -c '' 2>/dev/null; then
  find "$venv" -mindepth 1 -maxdepth 1 ! -name .lock -exec rm -rf {} +
  python3 -m venv "$venv" >&2 || {
    echo "python3 -m venv failed; on Debian: apt-get install python3-venv" >&2
    exit 1
  }
fi

for file in "${files[@]}"; do
  stamp="$venv/.installed-$file"
  want=$(sha256sum "$file" | cut -d' ' -f1)
  [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && continue
  echo "installing $file into $venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$file" >&2
  echo "$want" >"$stamp"
done
