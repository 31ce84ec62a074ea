#!/usr/bin/env bash
# Installs onnxruntime-node (the ONNX export tests' runtime) from the npm registry into a cache folder,
# once: later runs find it and do nothing. Its download-at-install step is skipped (--ignore-scripts): the
# package already ships the CPU binaries for linux/x64 and arm64 under bin/napi-v6. Prints the folder to
# put in NODE_PATH (its node_modules) as its last line.
#   bash cmake/setup_onnxruntime.sh            # into ${TAPEGRAD_ONNXRUNTIME_DIR:-~/.cache/tapegrad/onnxruntime}
# Needs node (>= 16) and npm: on Debian `apt-get install nodejs npm`.
set -euo pipefail
version=1.31.1
dir=${TAPEGRAD_ONNXRUNTIME_DIR:-$HOME/.cache/tapegrad/onnxruntime}
probe() {
  NODE_PATH="$dir/node_modules" node -e "
    const ort = require('onnxruntime-node');
    if (ort.env.versions.common !== '$version') process.exit(3);" 2>/dev/null
}
command -v node >/dev/null && command -v npm >/dev/null || {
  echo "setup_onnxruntime: node and npm are needed (apt-get install nodejs npm)" >&2; exit 1; }
if ! probe; then
  echo "setup_onnxruntime: installing onnxruntime-node@$version into $dir" >&2
  mkdir -p "$dir"
  [[ -f "$dir/package.json" ]] || echo '{"name": "tapegrad-onnxruntime", "private": true}' > "$dir/package.json"
  (cd "$dir" && npm install --ignore-scripts --no-audit --no-fund --loglevel=error "onnxruntime-node@$version" >&2)
  probe || { echo "setup_onnxruntime: onnxruntime-node@$version installed but does not load under $(node --version)" >&2; exit 1; }
fi
echo "$dir/node_modules"
