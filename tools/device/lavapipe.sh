#!/usr/bin/env bash
# CPU-only WebGPU for correctness tests: Mesa's lavapipe (software Vulkan) under onnxruntime-node's Dawn.
# Debian 12's own Mesa 22.3.6 lavapipe is REJECTED by Dawn ("Vulkan shaderUniform*ArrayDynamicIndexing
# required" -> "No supported adapters"); Mesa 25.0.7 from bookworm-backports works. This fetches that
# lavapipe (+ the newer libdrm it needs) into .cache/lavapipe without installing it system-wide, and
# prints the environment to use:
#   eval "$(bash tools/device/lavapipe.sh)"  &&  node tools/device/webgpu-probe.mjs
# Needs apt-get (Debian 12 / bookworm, amd64) and the runtime deps of mesa-vulkan-drivers already present
# (simplest: `apt-get install -y mesa-vulkan-drivers libvulkan1` once, which pulls libLLVM-15 & co.).
set -euo pipefail
cd "$(dirname "$0")/../.."
D=$PWD/.cache/lavapipe
LIB=$D/root/usr/lib/x86_64-linux-gnu
if [[ ! -f $D/lvp_icd.json ]]; then
  mkdir -p "$D/lists/partial" "$D/debs"
  echo 'deb http://deb.debian.org/debian bookworm-backports main' >"$D/sources.list"
  o="-oDir::Etc::SourceList=$D/sources.list -oDir::Etc::SourceParts=/dev/null -oDir::State::Lists=$D/lists -oAPT::Architecture=amd64"
  # shellcheck disable=SC2086
  apt-get $o update >/dev/null
  # shellcheck disable=SC2086
  (cd "$D/debs" && apt-get $o download mesa-vulkan-drivers/bookworm-backports libdrm2/bookworm-backports \
    libdrm-amdgpu1/bookworm-backports 2>&1 | grep -v unsandboxed >&2 || true)
  for f in "$D"/debs/*.deb; do dpkg -x "$f" "$D/root"; done
  [[ -f $LIB/libvulkan_lvp.so ]] || { echo "lavapipe.sh: no libvulkan_lvp.so extracted" >&2; exit 1; }
  printf '{"file_format_version":"1.0.0","ICD":{"library_path":"%s","api_version":"1.4.305"}}\n' \
    "$LIB/libvulkan_lvp.so" >"$D/lvp_icd.json"
fi
echo "export VK_DRIVER_FILES=$D/lvp_icd.json"
echo "export LD_LIBRARY_PATH=$LIB\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
