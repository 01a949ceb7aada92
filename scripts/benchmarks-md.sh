#!/usr/bin/env bash
# Rebuilds BENCHMARKS.md from the figures each benchmark wrote to bench/results/*.md.
set -euo pipefail
cd "$(dirname "$0")/.."
{
  cat <<'HEAD'
# Benchmarks

Every figure here was measured on this project's machines (2 cores, 24 GiB), side by side in one run,
and is reported as a ratio to a floor measured in the same run wherever the issue asks for one. The
benchmarks live in `bench/`; each writes its section to `bench/results/`, and
`bash scripts/benchmarks-md.sh` rebuilds this file from them. Run one with
`node --import tsx bench/<name>.bench.ts`.

| benchmark | headline |
| --- | --- |
HEAD
  grep -h '^<!-- headline:' bench/results/*.md | sed -E 's/^<!-- headline: (.*) -->$/\1/' || true
  for f in bench/results/fresh-kernels.md bench/results/local-runs.md bench/results/kernel.md bench/results/confinement.md bench/results/analysis.md bench/results/scale.md bench/results/chaos.md bench/results/cli.md bench/results/live-output.md bench/results/osprey-compare.md bench/results/telemetry.md; do
    [ -f "$f" ] || continue
    printf '\n---\n\n'
    sed -E '/^<!-- headline:/d; s/^# /## /; t; s/^## /### /' "$f"
  done
} > BENCHMARKS.md
echo "BENCHMARKS.md rebuilt"
