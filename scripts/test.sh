#!/usr/bin/env bash
# Set-up, then the checks CI runs: type-check, lint (biome; ruff check and format over python/), and
# every test (unit and integration, on a real redis-server, Jupyter servers and soft IOC that the
# tests start themselves).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== typecheck"; npx tsc --noEmit -p tsconfig.json
echo "== lint"; npx biome check src test bench bin
echo "== python lint"; .venv/bin/ruff check python && .venv/bin/ruff format --check python
echo "== tests"
# Integration test files run each in a process of their own; unit test files share one process
# (test/unit/shared-process.test.ts), except those listed in test/unit/own-process.txt.
mapfile -t files < <(
  find test -name '*.test.ts' ! -path 'test/unit/*' | sort
  sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' -e 's|^|test/unit/|' test/unit/own-process.txt
  echo test/unit/shared-process.test.ts
)
# One test file more than there are cores: the integration tests spend much of their time waiting
# (grace periods, kernels, polls), and at one file per core the CPU was ~60 % used.
exec node --import tsx --test --test-concurrency="${PYEXEC_TEST_CONCURRENCY:-$(($(nproc) + 1))}" --test-reporter=spec "${files[@]}"
