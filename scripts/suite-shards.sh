#!/bin/bash
# Starts slotcore as a redis-server that runs several shards, for test harnesses that start
# `redis-server CONFIG_FILE [words] [--option value ...]` (Redis's Tcl suites):
#
#     SLOTCORE_SHARDS=4 ../shared/redis-suite/run.sh scripts/suite-shards.sh unit-core OUT
#
# SLOTCORE_SHARDS: shards (default 2). SLOTCORE_BIN: the binary (default target/release/slotcore
# of this repository). SLOTCORE_EXTRA: more options, split on blanks (e.g. "--pin-cores no").
#
# `--shards N` goes right after the config file and the bare words that follow it (they belong to
# the file's first line), before the first `--option`, or last when there is none: appended
# after everything, it becomes the value of an option given without one (a bare `--port`), and
# put before bare words, it turns them into a config line of their own. The process keeps the
# name it was started by (`exec -a`), as harnesses look for it in process listings. Version,
# help and memory-test calls go to the binary as they are.
set -u
# Harnesses call it through a symlink (`src/redis-server`): the repository is where the script is.
here=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
bin=${SLOTCORE_BIN:-$here/../target/release/slotcore}
case "${1:-}" in
    -v | --version | -h | --help | --test-memory | --check-system) exec -a "$0" "$bin" "$@" ;;
esac
read -r -a extra <<<"${SLOTCORE_EXTRA:-}"
ours=(--shards "${SLOTCORE_SHARDS:-2}" "${extra[@]}")
out=()
placed=0
first=1
for a in "$@"; do
    if [[ $first -eq 1 && $a != -* ]]; then
        out+=("$a")
    elif [[ $placed -eq 0 && $a == --* ]]; then
        out+=("${ours[@]}" "$a")
        placed=1
    else
        out+=("$a")
    fi
    first=0
done
[[ $placed -eq 0 ]] && out+=("${ours[@]}")
exec -a "$0" "$bin" "${out[@]}"
