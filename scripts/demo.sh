#!/usr/bin/env bash
# Set-up, then `pyexec demo`: a private fleet (redis-server, soft IOC, every worker) runs three
# sample requests; the magnet ramp needs approval, which the demo gives; progress and results print.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node bin/pyexec.js demo "$@"
