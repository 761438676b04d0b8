#!/usr/bin/env bash
# Build .device/bundle.tar.xz: everything the device machine (no Node, no registry) needs to run
# headwise's JS with onnxruntime-node's WebGPU EP:
#   bin/node                 this machine's Node (linux-x64), stripped
#   node_modules/...         the production dependency closure from ./node_modules,
#                            onnxruntime-node trimmed to bin/napi-v6/linux/x64
#   debs/*.deb               Debian's Vulkan loader + glvnd/EGL/GL libs (amd64), dpkg -x'd by unpack.sh
#   MANIFEST                 versions and sizes
# Usage (repo root or anywhere):  bash tools/device/pack.sh [--minimal]
#   --minimal   only onnxruntime-node + onnxruntime-common instead of all production deps
# Env: HW_BUNDLE_DIR (default .device), HW_XZ_LEVEL (default 9), HW_NODE (default: command -v node)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUTDIR=${HW_BUNDLE_DIR:-.device}
BUNDLE=$OUTDIR/bundle.tar.xz
STAGE=$OUTDIR/stage
MINIMAL=0
[[ ${1:-} == --minimal ]] && MINIMAL=1

NODE_BIN=${HW_NODE:-$(command -v node)}
[[ -x $NODE_BIN ]] || { echo "pack: no node binary" >&2; exit 1; }
read -r NODE_PLAT NODE_VER < <("$NODE_BIN" -p 'process.platform + "-" + process.arch + " " + process.version')
[[ $NODE_PLAT == linux-x64 ]] || { echo "pack: node is $NODE_PLAT, need linux-x64" >&2; exit 1; }
[[ -d node_modules/onnxruntime-node/bin/napi-v6/linux/x64 ]] || { echo "pack: run npm ci first" >&2; exit 1; }

rm -rf "$STAGE"; mkdir -p "$STAGE/bin" "$STAGE/node_modules" "$STAGE/debs"

# 1. node (strip debug info: 99 MB -> 86 MB, xz 24 MB -> 22 MB)
if command -v strip >/dev/null; then strip -o "$STAGE/bin/node" "$NODE_BIN"; else cp "$NODE_BIN" "$STAGE/bin/node"; fi
chmod 755 "$STAGE/bin/node"

# 2. node_modules: production closure (npm ls), or the two ORT packages
if [[ $MINIMAL == 1 ]]; then
  mods=(node_modules/onnxruntime-node node_modules/onnxruntime-common)
else
  mapfile -t mods < <(npm ls --omit=dev --all --parseable 2>/dev/null | sed -n "s#^$ROOT/##p" | grep '^node_modules/' | sort -u)
  ((${#mods[@]})) || { echo "pack: npm ls found no production deps" >&2; exit 1; }
fi
for m in "${mods[@]}"; do
  mkdir -p "$STAGE/$(dirname "$m")"
  cp -a "$m" "$STAGE/$m"
done
ORT=$STAGE/node_modules/onnxruntime-node
find "$ORT/bin/napi-v6" -mindepth 2 -maxdepth 2 -type d ! -path '*/linux/x64' -exec rm -rf {} +
find "$ORT/bin/napi-v6" -mindepth 1 -maxdepth 1 -type d ! -name linux -exec rm -rf {} +
rm -rf "$ORT/script" "$ORT/lib" "$STAGE/node_modules/.bin"
find "$STAGE/node_modules" \( -name '*.map' -o -name '*.md' -o -name '*.ts' ! -name '*.d.ts' \) -type f -delete 2>/dev/null || true

# 3. Vulkan loader + GL dispatch .debs (device README recipe). libvulkan1 alone is NOT enough on the
#    H100 image: NVIDIA's ICD (libGLX_nvidia.so.0) then fails vkCreateInstance. Reuse .gl/ or
#    HW_VULKAN_DEB_DIR when they already hold the set.
DEBS=${HW_VULKAN_DEBS:-libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2}
debsrc=""
for d in "${HW_VULKAN_DEB_DIR:-}" .gl; do
  [[ -n $d ]] || continue
  ok=1; for p in $DEBS; do compgen -G "$d/${p}_*_amd64.deb" >/dev/null || ok=0; done
  ((ok)) && { debsrc=$d; break; }
done
if [[ -n $debsrc ]]; then
  for p in $DEBS; do cp "$debsrc"/"${p}"_*_amd64.deb "$STAGE/debs/"; done
else
  mkdir -p /tmp/amd64/partial
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  # shellcheck disable=SC2086
  apt-get $o update >/dev/null
  # shellcheck disable=SC2086
  (cd "$STAGE/debs" && apt-get $o download $DEBS 2>&1 | grep -v unsandboxed || true)
fi
for p in $DEBS; do
  compgen -G "$STAGE/debs/${p}_*.deb" >/dev/null || { echo "pack: could not get $p .deb" >&2; exit 1; }
done

# 4. manifest + tarball
{
  echo "built: $(date -u +%FT%TZ) on $(uname -n)"
  echo "node: $NODE_VER $NODE_PLAT (from $NODE_BIN)"
  echo "onnxruntime-node: $("$NODE_BIN" -p "require(require('path').resolve('$ORT/package.json')).version")"
  echo "debs: $(cd "$STAGE/debs" && echo *)"
  echo "modules: ${#mods[@]}"
  (cd "$STAGE" && du -sh bin node_modules debs)
} >"$STAGE/MANIFEST"
tar -C "$STAGE" -cf - . | xz -"${HW_XZ_LEVEL:-9}" -T0 >"$BUNDLE.tmp"
mv "$BUNDLE.tmp" "$BUNDLE"
rm -rf "$STAGE"
size=$(stat -c %s "$BUNDLE")
echo "pack: $BUNDLE $((size / 1048576)) MiB ($size bytes)"
((size < 45 * 1048576)) || echo "pack: WARNING bundle is over 45 MiB" >&2
