#!/usr/bin/env bash
# Installs what a fresh machine lacks: redis-server (apt), the project virtualenv with the
# kernel-side Python packages (pip), the kernelspecs, the Node dependencies (npm ci), the
# compiled CLI (dist/), and the Python client's virtualenv (.venv/client).
# Idempotent, and quick when everything is already in place (stamp files record what was done).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
stamp_dir=.venv/.pyexec-stamps

log() { printf 'setup: %s\n' "$*" >&2; }
sha() { sha256sum "$@" | sha256sum | cut -c1-16; }

apt_needed=()
command -v redis-server >/dev/null 2>&1 || apt_needed+=(redis-server)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || apt_needed+=(python3-venv)
if [ "${PYEXEC_BROWSER_TESTS:-1}" = 1 ] && ! command -v chromium >/dev/null 2>&1; then apt_needed+=(chromium); fi
if [ ${#apt_needed[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] && ! command -v sudo >/dev/null 2>&1; then
    log "missing ${apt_needed[*]} and not root: install them with apt-get"; exit 1
  fi
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  log "apt-get install ${apt_needed[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${apt_needed[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  python3 -m venv .venv
fi
mkdir -p "$stamp_dir"
want=$(sha python/requirements.txt)
if [ "$(cat "$stamp_dir/pip" 2>/dev/null)" != "$want" ]; then
  log "pip install -r python/requirements.txt"
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q --disable-pip-version-check -r python/requirements.txt
  echo "$want" > "$stamp_dir/pip"
fi

# Development tools (ruff), kept out of kernel images: python/requirements-dev.txt.
want=$(sha python/requirements-dev.txt)
if [ "$(cat "$stamp_dir/pip-dev" 2>/dev/null)" != "$want" ]; then
  log "pip install -r python/requirements-dev.txt"
  .venv/bin/python -m pip install -q --disable-pip-version-check -r python/requirements-dev.txt
  echo "$want" > "$stamp_dir/pip-dev"
fi

# pyexec's own Python distribution, editable (python/pyproject.toml): it registers the kernel
# provisioner that forks kernels from a warm zygote.
want=$(sha python/pyproject.toml)
if [ "$(cat "$stamp_dir/runtime" 2>/dev/null)" != "$want" ]; then
  log "pip install -e python (pyexec-runtime)"
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -e python
  echo "$want" > "$stamp_dir/runtime"
fi

if [ -f python/pyexec_runtime/kernelspecs.py ]; then
  want=$(sha python/pyexec_runtime/kernelspecs.py config.yml 2>/dev/null || true)
  if [ "$(cat "$stamp_dir/kernels" 2>/dev/null)" != "$want" ]; then
    log "installing kernelspecs"
    PYTHONPATH="$root/python" .venv/bin/python -m pyexec_runtime.kernelspecs install --prefix "$root/.venv"
    echo "$want" > "$stamp_dir/kernels"
  fi
fi

want=$(sha package.json package-lock.json)
if [ ! -d node_modules ] || [ "$(cat node_modules/.pyexec-stamp 2>/dev/null)" != "$want" ]; then
  log "npm ci"
  # No fallback to `npm install`: a lock file that `npm ci` refuses is a defect to fix in the lock
  # file (CI fails on it), not something to paper over by rewriting the lock in every clone.
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > node_modules/.pyexec-stamp
fi

# The compiled CLI (dist/, which bin/pyexec.js runs): rebuilt when a source or the build config changed.
want=$( (find src -type f -print0 | sort -z | xargs -0 sha256sum; sha256sum tsconfig.json tsconfig.build.json scripts/build.mjs package-lock.json) | sha256sum | cut -c1-16)
if [ ! -f dist/.build-stamp ] || [ "$(cat dist/.pyexec-source-sha 2>/dev/null)" != "$want" ]; then
  log "building dist/ (tsc)"
  node scripts/build.mjs
  echo "$want" > dist/.pyexec-source-sha
elif [ -n "$(find src -newer dist/.build-stamp -print -quit)" ]; then
  touch dist/.build-stamp # same contents, newer times (a touch, a checkout): the build is current
fi
# --- The Python client (python/pyexec_client) in its own virtualenv, with its test tools ----------
# httpx and pydantic (the Osprey adapter), pytest and openapi-spec-validator (the producer API's
# OpenAPI document is checked with it); installed editable, so the tests run the sources as they are.
# test/integration/python-client.redis.test.ts runs its tests against a fleet.
client_venv=.venv/client
want=$(sha python/pyexec_client/pyproject.toml)
if [ "$(cat "$stamp_dir/client" 2>/dev/null)" != "$want" ] || [ ! -x "$client_venv/bin/python" ]; then
  log "python client (pip install -e python/pyexec_client[osprey,test])"
  [ -x "$client_venv/bin/python" ] || python3 -m venv "$client_venv"
  "$client_venv/bin/python" -m pip install -q --disable-pip-version-check -e "python/pyexec_client[osprey,test]"
  echo "$want" > "$stamp_dir/client"
fi

# --- Deploy validation tools (issue #7: deploy/, docker-compose.yml) -----------------------------
# kubernetes-validate, check-jsonschema (compose-spec) and KEDA's CRD types from PyPI into their own
# virtualenv, and promtool unpacked from Debian's prometheus package (the daemon is neither
# installed nor started). test/integration/ops-deploy.test.ts runs them; none needs a Docker
# engine or the network at validation time. PYEXEC_DEPLOY_TOOLS=0 skips this block.
if [ "${PYEXEC_DEPLOY_TOOLS:-1}" = 1 ]; then
  tools=.venv/deploy-tools
  want=$(sha deploy/validate/requirements.txt)
  if [ "$(cat "$stamp_dir/deploy-tools" 2>/dev/null)" != "$want" ] || [ ! -x "$tools/bin/kubernetes-validate" ]; then
    log "deploy validation tools (pip install -r deploy/validate/requirements.txt)"
    [ -x "$tools/bin/python" ] || python3 -m venv "$tools"
    "$tools/bin/python" -m pip install -q --disable-pip-version-check -r deploy/validate/requirements.txt
    echo "$want" > "$stamp_dir/deploy-tools"
  fi
  if [ ! -x "$tools/bin/promtool" ]; then
    log "promtool (from Debian's prometheus package)"
    deb_dir=$(mktemp -d)
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
    if ! (cd "$deb_dir" && apt-get download prometheus >/dev/null 2>&1); then
      $SUDO apt-get update -qq
      (cd "$deb_dir" && apt-get download prometheus >/dev/null)
    fi
    dpkg-deb -x "$deb_dir"/prometheus_*.deb "$deb_dir/root"
    cp "$deb_dir/root/usr/bin/promtool" "$tools/bin/promtool"
    rm -rf "$deb_dir"
  fi
fi
# --- end of deploy validation tools ----------------------------------------------------------------

log "ready"
