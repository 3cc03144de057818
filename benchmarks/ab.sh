#!/bin/sh
# Before/after pairs of benchmarks/store_persist.py, alternated so that both see the same machine:
#   benchmarks/ab.sh BASE_REV [PAIRS] [store_persist.py options...]
# BASE_REV's services/ is exported to a temporary directory and put first on PYTHONPATH for the
# "before" runs; the "after" runs use this checkout. Prints every run's lines, tagged.
set -eu
base=$1; pairs=${2:-6}; shift $(( $# >= 2 ? 2 : 1 ))
here=$(cd "$(dirname "$0")/.." && pwd)
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
git -C "$here" archive "$base" services | tar -x -C "$tree"
i=0
while [ "$i" -lt "$pairs" ]; do
    PYTHONPATH="$tree/services" "$here/.venv/bin/python" "$here/benchmarks/store_persist.py" --rounds 1 "$@" | sed 's/^/before /'
    "$here/.venv/bin/python" "$here/benchmarks/store_persist.py" --rounds 1 "$@" | sed 's/^/after  /'
    i=$((i + 1))
done
