#!/usr/bin/env bash
# The main job: installs missing packages, builds Release, fetches MNIST once into the cache folder and
# trains the MNIST classifier. Idempotent. Extra arguments go to mnist_mlp (see --help).
#   bash cmake/run_main.sh --epochs 10
set -euo pipefail
cd "$(dirname "$0")/.."

bash cmake/setup_deps.sh
echo "run_main: building Release in build/"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DTAPEGRAD_BUILD_TESTS=OFF -DTAPEGRAD_BUILD_BENCH=OFF >/dev/null
cmake --build build -j "$(nproc)" --target mnist_mlp
data_dir=$(bash cmake/fetch_mnist.sh | tail -n 1)
echo "run_main: training on $data_dir"
exec build/examples/mnist_mlp --data "$data_dir" "$@"
