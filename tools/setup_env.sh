#!/usr/bin/env bash
# Installs mmsam and its pinned stack into a project-local virtualenv, idempotently.
#
#   bash tools/setup_env.sh            # creates/updates ./.venv (or $MMSAM_VENV)
#
# A second run with unchanged requirements returns in seconds and rebuilds nothing.
# mmcv 2.1.0 is built from source with its ops (MMCV_WITH_OPS=1) because mmseg 1.2.2 needs
# mmcv<2.2 and `import mmseg.models` needs mmcv.ops; no prebuilt wheel exists for torch 2.14.
# The built wheel is cached under $MMSAM_CACHE (default ~/.cache/mmsam) keyed by the torch
# version and CUDA version it was compiled against, because pip's own wheel cache ignores
# which torch a wheel was built for.
#
# GPU machines: install a CUDA build of torch 2.14.1 + torchvision 0.29.1 into the venv first
# (see README); this script keeps any torch whose version is 2.14.1.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MMSAM_VENV:-$ROOT/.venv}"
CACHE="${MMSAM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mmsam}"
PYTHON_BIN="${PYTHON:-python3}"
TORCH_VERSION=2.14.1
TORCHVISION_VERSION=0.29.1
MMCV_VERSION=2.1.0

log() { echo "[setup_env] $*"; }

if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtualenv $VENV with $($PYTHON_BIN --version)"
  "$PYTHON_BIN" -m venv "$VENV"
fi
PY="$VENV/bin/python"
# This machine's pip configuration may name local index folders that lack some packages; pip
# warns once per package about them, which drowns the real output.
pip_install() {
  "$PY" -m pip install --disable-pip-version-check -q "$@" \
    2> >(grep -v "^WARNING: Location '.*' is ignored" >&2)
}

stamp_file="$VENV/.mmsam-setup-stamp"
stamp="$(cat "$ROOT"/requirements/*.txt "$ROOT/setup.py" "$ROOT/tools/setup_env.sh" | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$stamp" ] \
   && "$PY" -c "import mmcv.ops, mmseg.models, segment_anything, sam2, mmsam" 2>/dev/null; then
  log "environment $VENV is up to date"
  exit 0
fi

pip_install -r "$ROOT/requirements/build.txt"

installed_torch="$("$PY" -c 'import torch; print(torch.__version__)' 2>/dev/null || true)"
if [ "${installed_torch%%+*}" = "$TORCH_VERSION" ]; then
  log "keeping installed torch $installed_torch"
else
  log "installing torch $TORCH_VERSION + torchvision $TORCHVISION_VERSION"
  pip_install "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"
fi

mmcv_ok() {
  "$PY" - <<EOF 2>/dev/null
import mmcv, mmcv.ops
assert mmcv.__version__ == "$MMCV_VERSION", mmcv.__version__
EOF
}
if mmcv_ok; then
  log "mmcv $MMCV_VERSION with ops already installed"
else
  key="$("$PY" -c 'import sys, torch; print(f"torch-{torch.__version__}-cuda-{torch.version.cuda}-py{sys.version_info[0]}{sys.version_info[1]}")')"
  wheel_dir="$CACHE/mmcv-$MMCV_VERSION/$key"
  wheel="$(ls "$wheel_dir"/mmcv-"$MMCV_VERSION"-*.whl 2>/dev/null | head -n 1 || true)"
  if [ -z "$wheel" ]; then
    log "building mmcv $MMCV_VERSION with ops for $key (about 11 minutes on 2 cores)"
    build="$(mktemp -d)"
    trap 'rm -rf "$build"' EXIT
    "$PY" -m pip download -q --no-deps --no-binary mmcv --no-build-isolation \
      "mmcv==$MMCV_VERSION" -d "$build"
    tar -xzf "$build"/mmcv-"$MMCV_VERSION".tar.gz -C "$build"
    # torch 2.14's headers require C++20; mmcv 2.1.0's setup.py hard-codes C++17.
    sed -i 's/-std=c++17/-std=c++20/g' "$build/mmcv-$MMCV_VERSION/setup.py"
    (cd "$build/mmcv-$MMCV_VERSION" && MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
      "$PY" -m pip wheel -q --no-deps --no-build-isolation . -w "$build/dist")
    mkdir -p "$wheel_dir"
    built="$(ls "$build"/dist/mmcv-*.whl)"
    # Copy then rename, so an interrupted copy never leaves a half-written wheel in the cache.
    cp "$built" "$wheel_dir/.partial"
    mv "$wheel_dir/.partial" "$wheel_dir/$(basename "$built")"
    wheel="$wheel_dir/$(basename "$built")"
  else
    log "using cached mmcv wheel $wheel"
  fi
  pip_install "$wheel"
fi

log "installing runtime and test requirements"
pip_install -r "$ROOT/requirements/mminstall.txt" -r "$ROOT/requirements/runtime.txt" \
  -r "$ROOT/requirements/tests.txt" -r "$ROOT/requirements/deploy.txt" \
  -r "$ROOT/requirements/datasets.txt"
SAM2_BUILD_CUDA=0 pip_install --no-build-isolation -r "$ROOT/requirements/sam2.txt"
pip_install --no-deps --no-build-isolation -e "$ROOT"

"$PY" -c "import mmcv.ops, mmseg.models, segment_anything, mmsam; print('[setup_env] ok: torch', __import__('torch').__version__, 'mmcv', mmcv.__version__, 'mmseg', __import__('mmseg').__version__)"
echo "$stamp" > "$stamp_file"
