#!/usr/bin/env bash
# Split a model folder into two halves that each fit the device tool's 64 MiB tree limit next to the
# repo (~24 MB), for a model too big to travel with the 34 MB bundle (e.g. ref-llama-30m, 60 MB).
#   here:    bash tools/device/split-model.sh ../shared/models/ref-llama-30m
#            -> .devmodel/a/ (first half of model.safetensors), .devmodel/b/ (rest + small files + sha256)
#   device:  three warm calls, back to back (the machine goes back after 30 s idle):
#            1. carry [".device", "dist"]:  . tools/device/unpack.sh; mkdir -p /tmp/keep; cp -r dist /tmp/keep/
#            2. carry [".devmodel/a"]:      bash tools/device/join-model.sh a
#            3. carry [".devmodel/b"]:      bash tools/device/join-model.sh b && . tools/device/unpack.sh && \
#                 node dist/bench/gpu.js --check-model /tmp/devmodel/NAME --model /tmp/devmodel/NAME --context 1984
set -euo pipefail
cd "$(dirname "$0")/../.."
src=${1:?usage: split-model.sh MODEL_DIR}
[[ -f $src/model.safetensors ]] || { echo "split-model: $src/model.safetensors not found (single-file checkpoints only)" >&2; exit 1; }
rm -rf .devmodel && mkdir -p .devmodel/a .devmodel/b
size=$(stat -c %s "$src/model.safetensors")
half=$(( (size + 1) / 2 ))
head -c "$half" "$src/model.safetensors" > .devmodel/a/part
tail -c +"$((half + 1))" "$src/model.safetensors" > .devmodel/b/part
find "$src" -maxdepth 1 -type f ! -name model.safetensors -size -2M -exec cp {} .devmodel/b/ \;
sha256sum "$src/model.safetensors" | cut -d' ' -f1 > .devmodel/b/sha256
basename "$(cd "$src" && pwd)" > .devmodel/b/name
echo "split-model: $(du -sh .devmodel/a | cut -f1) + $(du -sh .devmodel/b | cut -f1) in .devmodel/ (model $(cat .devmodel/b/name))"
