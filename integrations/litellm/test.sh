#!/usr/bin/env bash
# The LiteLLM guard's tests: the real LiteLLM proxy, with the guard, against
# a real Clearance server started from the binary given (default
# target/debug/clearance). Installs LiteLLM's proxy and pytest (the versions
# in tests/requirements.txt) into a virtual environment under target/, once:
# later runs find them there and install nothing.
#
# usage: integrations/litellm/test.sh [CLEARANCE_BINARY] [PYTEST_ARGS...]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
binary="${1:-$repo/target/debug/clearance}"
shift || true
[ -x "$binary" ] || { echo "no Clearance binary at $binary (cargo build --bin clearance)"; exit 2; }
binary="$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")"

# A virtual environment of its own: LiteLLM's proxy pins many packages
# (fastapi, pydantic, httpx, …) that must not replace the ones the other
# tests' Python tools use.
venv="${LITELLM_VENV:-$repo/target/litellm-venv}"
requirements="$here/tests/requirements.txt"
python="$venv/bin/python"
if [ ! -x "$python" ]; then
  python3 -m venv "$venv"
fi
if ! cmp -s "$requirements" "$venv/.clearance-requirements"; then
  started=$(date +%s)
  "$python" -m pip install -q --disable-pip-version-check -r "$requirements" 2>/dev/null \
    || "$python" -m pip install -q --disable-pip-version-check --break-system-packages -r "$requirements"
  cp "$requirements" "$venv/.clearance-requirements"
  echo "installed $(tr '\n' ' ' < "$requirements")in $(( $(date +%s) - started )) s"
fi
LITELLM_LOCAL_MODEL_COST_MAP=True "$python" -c 'import litellm, importlib.metadata as m; print("litellm", m.version("litellm"))'

cd "$here"
PYTHONDONTWRITEBYTECODE=1 GUARD_TEST_CLEARANCE_BINARY="$binary" \
  "$python" -m pytest -p no:cacheprovider -q -rs tests "$@"
