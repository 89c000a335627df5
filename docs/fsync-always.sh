#!/usr/bin/env bash
# Where the set-only gap of --fsync always to the baseline comes from.
# Each line is its own `kvstore-bench --compare --workloads set` run
# (kvstore and the baseline alternated, median of the per-round ratios):
#   everysec / always with 50 clients, the data on the disk (issue 4's case);
#   always with the data on tmpfs, where an fsync costs next to nothing;
#   always with 100 and 200 clients, where more writes share each fsync.
# Takes about 6 minutes with the defaults.
# Usage: docs/fsync-always.sh [ROUNDS] [DURATION]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
duration=${2:-5s}
make -s build

compare() { # label, clients, fsync policy; TMPDIR picks the data dirs' file system
  echo "== $1: --fsync $3, $2 clients, data dirs in ${TMPDIR:-/tmp} ($(df --output=fstype "${TMPDIR:-/tmp}" | tail -1))"
  bin/kvstore-bench --compare --workloads set --server-bin bin/kvstore-server \
    --rounds "$rounds" --duration "$duration" --clients "$2" --value-size 16 --keys 100000 \
    --server-args "--fsync $3 --log-level warn" 2>/dev/null
}

compare "the target's case, everysec" 50 everysec
compare "the target's case" 50 always
if [ -d /dev/shm ]; then
  TMPDIR=/dev/shm compare "fsync next to free (tmpfs)" 50 always
else
  echo "== no /dev/shm: skipping the tmpfs run"
fi
compare "more clients" 100 always
compare "more clients" 200 always
