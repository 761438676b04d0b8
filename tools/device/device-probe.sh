#!/usr/bin/env bash
# One-call WebGPU check on the device machine (run() with carry: [".device"]):
#   bash tools/device/device-probe.sh
# Writes probe.json (full-size probe), probe-novalid.json + novalid.err (validationMode disabled),
# verbose.log.xz (ORT verbose log of a quick run) and env.txt under $OUT (or ./.device/out).
cd "$(dirname "$0")/../.."
OUT=${OUT:-.device/out}; mkdir -p "$OUT"
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  grep -E '^(PRETTY_NAME)' /etc/os-release; nproc; uname -r
  ls /usr/local/nvidia/share/vulkan/icd.d/ && cat /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
  echo "before: $(ldconfig -p | grep -ciE 'libvulkan\.so') libvulkan entries; $(ldconfig -p | grep -c GLX_nvidia) GLX_nvidia"
  echo "nvidia graphics libs: $(ls /usr/local/nvidia/lib64 2>/dev/null | grep -iE 'glx|glcore|glvk|gpucomp|dispatch|egl|vulkan' | tr '\n' ' ')"
  echo "GLX_nvidia unresolved: $(ldd /usr/local/nvidia/lib64/libGLX_nvidia.so.0 2>&1 | grep -i 'not found' | tr '\n' ' ')"
  ls -la /dev/nvidia* /dev/dri 2>&1 | head -12
} >"$OUT/env.txt" 2>&1
cat "$OUT/env.txt"
. tools/device/unpack.sh || exit 1
node tools/device/webgpu-probe.mjs >"$OUT/probe.json" 2>"$OUT/probe.err"; echo "probe rc=$?"
cat "$OUT/probe.json"; grep -v '^\[probe\]' "$OUT/probe.err" | sort | uniq -c | head -20
if grep -q 'No supported adapters' "$OUT/probe.json"; then
  echo "--- no adapter: loader debug"
  VK_LOADER_DEBUG=error,warn,driver HW_PROBE_QUICK=1 node tools/device/webgpu-probe.mjs 2>&1 | grep -iE 'loader|nvidia|icd' | cut -c1-250 | head -30
  exit 3
fi
HW_WEBGPU_OPTS='{"validationMode":"disabled"}' HW_PROBE_REPS=3 node tools/device/webgpu-probe.mjs >"$OUT/probe-novalid.json" 2>"$OUT/novalid.err"
echo "novalid rc=$?"; cat "$OUT/probe-novalid.json"; tail -4 "$OUT/novalid.err"
HW_ORT_LOG=verbose HW_PROBE_QUICK=1 timeout 120 node tools/device/webgpu-probe.mjs >/dev/null 2>"$OUT/verbose.log"
grep -iE 'adapter|vendor|architecture|vulkan|nvidia|backend|subgroup|shader-f16|feature' "$OUT/verbose.log" | cut -c1-300 | sort | uniq -c | sort -rn | head -30
xz -9 -f "$OUT/verbose.log"
# reference point: PyTorch fp32 (TF32 off) and fp16 2048^3 matmul on the same GPU
python3 - <<'EOF' 2>&1 | tail -3
import torch, time
torch.backends.cuda.matmul.allow_tf32 = False
for dt in (torch.float32, torch.float16):
    a = torch.randn(2048, 2048, device='cuda', dtype=dt); b = torch.randn_like(a)
    for _ in range(3): a @ b
    torch.cuda.synchronize(); t = time.perf_counter()
    for _ in range(50): a @ b
    torch.cuda.synchronize(); dt_s = (time.perf_counter() - t) / 50
    print(f"torch {dt} 2048 matmul: {dt_s*1e3:.3f} ms, {2*2048**3/dt_s/1e9:.0f} GFLOP/s")
EOF
