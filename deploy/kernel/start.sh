#!/bin/sh
# Entry point of the pyexec kernel image: the same jupyter_server command line as
# spawnJupyterServer (src/executors/jupyter-server.ts).
#
# Environment:
#   JUPYTER_TOKEN or JUPYTER_TOKEN_FILE  the server's token (required); it is moved to a private
#       file that is deleted once the server answers, so kernels find it neither in their
#       environment nor on disk
#   PYEXEC_KERNEL_MODES_JSON   optional: {"read_only": {"kernel_name", "environment"}, "write_access": {...}}
#   PYEXEC_KERNEL_NAMES        kernelspecs the server may start (default: both defaults)
#   JUPYTER_PORT               port (default 8888)
#   EPICS_CA_ADDR_LIST, EPICS_CA_SERVER_PORT, ...  inherited by kernels unless a mode sets them
set -eu
port="${JUPYTER_PORT:-8888}"
names="${PYEXEC_KERNEL_NAMES:-python3-epics-readonly python3-epics-write}"

if [ -n "${PYEXEC_KERNEL_MODES_JSON:-}" ]; then
  python -m pyexec_runtime.kernelspecs install --prefix /opt/pyexec --python /opt/venv/bin/python >/dev/null
fi

tokdir=$(mktemp -d)
if [ -n "${JUPYTER_TOKEN:-}" ]; then
  printf '%s' "$JUPYTER_TOKEN" > "$tokdir/token"
elif [ -n "${JUPYTER_TOKEN_FILE:-}" ]; then
  cat "$JUPYTER_TOKEN_FILE" > "$tokdir/token"
else
  echo "start.sh: set JUPYTER_TOKEN or JUPYTER_TOKEN_FILE" >&2
  exit 2
fi
chmod 600 "$tokdir/token"
unset JUPYTER_TOKEN
export JUPYTER_TOKEN_FILE="$tokdir/token"

allowed=""
for n in $names; do allowed="$allowed --KernelSpecManager.allowed_kernelspecs=$n"; done

# shellcheck disable=SC2086
python -m jupyter_server \
  --config /opt/pyexec/python/pyexec_runtime/jupyter_server_config.py --no-browser \
  --ServerApp.ip=0.0.0.0 --ServerApp.port="$port" --ServerApp.port_retries=0 \
  --ServerApp.root_dir=/home/pyexec/work $allowed &
server=$!
trap 'kill -TERM "$server" 2>/dev/null' TERM INT

token=$(cat "$tokdir/token")
i=0
until python -c "import sys, urllib.request; urllib.request.urlopen(urllib.request.Request('http://127.0.0.1:$port/api/status', headers={'Authorization': 'token ' + sys.argv[1]}), timeout=2)" "$token" 2>/dev/null; do
  i=$((i + 1))
  if [ "$i" -gt 600 ] || ! kill -0 "$server" 2>/dev/null; then echo "start.sh: jupyter_server did not come up" >&2; exit 1; fi
  sleep 0.1
done
rm -rf "$tokdir"
unset token
wait "$server"
