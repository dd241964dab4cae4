#!/usr/bin/env bash
# tests/netns/test_asym.sh sized for a slow VM (make vmcheck's default):
# asymmetric routing through two firewalls with --defer, once per release
# path the guest's kernel allows (Debian's 6.1 allows live frames, so both
# live and redirect run there), 10 connections a run instead of 100.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
ASYM_CONNS=${ASYM_CONNS:-10} ASYM_BATCH=${ASYM_BATCH:-5} exec tests/netns/test_asym.sh
