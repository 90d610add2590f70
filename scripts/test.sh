#!/usr/bin/env bash
# Sets up (scripts/setup.sh), runs the whole test suite with meson, and closes with one line
# "N passed, N failed" counting the individual GoogleTest cases (and property tests).
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 2
meson test -C build --print-errorlogs --num-processes 2 "$@"
status=$?
python3 scripts/count_tests.py build/meson-logs/testlog.junit.xml || status=1
exit $status
