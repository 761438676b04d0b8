#!/usr/bin/env bash
# Device-side setup for .device/bundle.tar.xz (built by tools/device/pack.sh).
# Run from the repo root on the device machine, either
#   . tools/device/unpack.sh && node tools/device/webgpu-probe.mjs      (sourced: exports stay)
#   bash tools/device/unpack.sh node tools/device/webgpu-probe.mjs      (wrapper: runs "$@")
# It: unpacks the bundle to /tmp/hw (once per machine), dpkg -x's the Vulkan loader + glvnd debs
# into / (only if ldconfig lacks libvulkan.so.1 or libGLdispatch.so.0), runs ldconfig, exports
# VK_DRIVER_FILES (NVIDIA ICD) and __EGL_VENDOR_LIBRARY_FILENAMES,
# puts /tmp/hw/bin first on PATH, and links ./node_modules -> /tmp/hw/node_modules
# (ESM ignores NODE_PATH, so the repo root needs a real node_modules).
# Env: HW_BUNDLE (default .device/bundle.tar.xz), HW_DIR (default /tmp/hw), HW_QUIET=1.

_hw_setup() {
  local bundle=${HW_BUNDLE:-.device/bundle.tar.xz} dir=${HW_DIR:-/tmp/hw} say=echo
  [[ ${HW_QUIET:-} == 1 ]] && say=:
  local stamp=""
  [[ -f $bundle ]] && stamp=$(stat -Lc %s "$bundle")
  if [[ ! -x $dir/bin/node || ( -n $stamp && $stamp != "$(cat "$dir/.stamp" 2>/dev/null)" ) ]]; then
    [[ -f $bundle ]] || { echo "unpack: $bundle not found (carry .device)" >&2; return 1; }
    rm -rf "$dir" && mkdir -p "$dir" && tar -C "$dir" -xJf "$bundle" || { echo "unpack: tar failed" >&2; return 1; }
    echo "$stamp" >"$dir/.stamp"
  fi
  if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1 ' || ! ldconfig -p | grep -q 'libGLdispatch\.so\.0 '; then
    local f
    for f in "$dir"/debs/*.deb; do dpkg -x "$f" / || return 1; done
    ldconfig
  fi
  local icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  if [[ -z ${VK_DRIVER_FILES:-} && -f $icd ]]; then export VK_DRIVER_FILES=$icd; fi
  local egl=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
  if [[ -z ${__EGL_VENDOR_LIBRARY_FILENAMES:-} && -f $egl ]]; then export __EGL_VENDOR_LIBRARY_FILENAMES=$egl; fi
  export PATH="$dir/bin:$PATH"
  if [[ -L node_modules || ! -e node_modules ]]; then
    ln -sfn "$dir/node_modules" node_modules
  else
    $say "unpack: keeping existing ./node_modules (not a link)"
  fi
  $say "unpack: node $(node --version) at $(command -v node); VK_DRIVER_FILES=${VK_DRIVER_FILES:-unset};" \
    "vulkan loader: $(ldconfig -p | grep -o '/[^ ]*libvulkan\.so\.1$' | head -1)"
}

if [[ ${BASH_SOURCE[0]} != "$0" ]]; then
  _hw_setup  # sourced: leave the environment set for the caller
else
  set -euo pipefail
  cd "$(dirname "$0")/../.."
  _hw_setup
  if (($#)); then exec "$@"; fi
fi
