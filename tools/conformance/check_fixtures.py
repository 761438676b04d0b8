#!/usr/bin/env python3
"""Sanity-check the conformance fixtures with plain python3 (no torch, no numpy).

    python3 tools/conformance/check_fixtures.py [--root REPO_ROOT]

Decodes every test/fixtures/conformance/*.json, checks shapes against the checkpoint's config,
that attention rows sum to 1 and are causal, that logits are finite, that tiny-llama's config is
in the old (4.x) layout and the others in the transformers-5 layout, that tiny-mistral is sharded
with an index, and that tied models carry no lm_head tensor.
"""

import argparse
import base64
import json
import math
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def decode(arr):
    raw = base64.b64decode(arr["f32"])
    n = 1
    for d in arr["shape"]:
        n *= d
    assert len(raw) == 4 * n, f"payload {len(raw)} bytes, shape {arr['shape']} wants {4 * n}"
    return struct.unpack(f"<{n}f", raw)


def st_header(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(n))


def tensors(model_dir):
    idx = os.path.join(model_dir, "model.safetensors.index.json")
    out = {}
    if os.path.exists(idx):
        wm = json.load(open(idx))["weight_map"]
        shards = sorted(set(wm.values()))
        for sh in shards:
            for k, v in st_header(os.path.join(model_dir, sh)).items():
                if k != "__metadata__":
                    out[k] = v
        assert set(wm) == set(out), "index weight_map and shard headers disagree"
    else:
        for k, v in st_header(os.path.join(model_dir, "model.safetensors")).items():
            if k != "__metadata__":
                out[k] = v
    return out


EXPECT = {
    # name: (on-disk dtype, tied, sharded, old config format)
    "tiny-llama": ("BF16", False, False, True),
    "tiny-llama-tied": ("F16", True, False, False),
    "tiny-mistral": ("F32", False, True, False),
    "tiny-qwen2": ("F32", True, False, False),
    "tiny-qwen3": ("F32", False, False, False),
    "tiny-gpt2": ("F32", True, False, False),
    "ref-llama-7m": ("BF16", True, False, False),
}


def check(root, name):
    fx = json.load(open(os.path.join(root, "test/fixtures/conformance", f"{name}.json")))
    assert fx["model"] == name
    mdir = os.path.join(root, fx["modelDir"])
    cfg = json.load(open(os.path.join(mdir, "config.json")))
    dtype, tied, sharded, old = EXPECT[name]
    ids = fx["inputIds"]
    T = len(ids)
    assert ids[0] == 0, "inputIds must start with 0"
    if cfg.get("model_type") == "gpt2":
        L, H, V = cfg["n_layer"], cfg["n_head"], cfg["vocab_size"]
    else:
        L, H, V = cfg["num_hidden_layers"], cfg["num_attention_heads"], cfg["vocab_size"]
    assert all(0 <= i < V for i in ids)
    assert fx["logits"]["shape"] == [T, V], fx["logits"]["shape"]
    assert fx["attentions"]["shape"] == [L, H, T, T], fx["attentions"]["shape"]
    logits = decode(fx["logits"])
    assert all(math.isfinite(x) for x in logits)
    att = decode(fx["attentions"])
    worst_sum, worst_causal, peak = 0.0, 0.0, 0.0
    for r in range(L * H * T):
        q = r % T
        row = att[r * T:(r + 1) * T]
        worst_sum = max(worst_sum, abs(sum(row) - 1.0))
        worst_causal = max(worst_causal, max((abs(x) for x in row[q + 1:]), default=0.0))
        peak = max(peak, max(row[:q + 1]) if q > 0 else 0.0)
    assert worst_sum < 1e-5, f"attention rows off 1 by {worst_sum}"
    assert worst_causal == 0.0, f"attention to the future: {worst_causal}"

    ts = tensors(mdir)
    dts = {v["dtype"] for v in ts.values()}
    assert dts == {dtype}, f"on-disk dtypes {dts}, wanted {dtype}"
    has_lm_head = any(k.startswith("lm_head") for k in ts)
    assert has_lm_head != tied, f"lm_head present={has_lm_head}, tied={tied}"
    is_sharded = os.path.exists(os.path.join(mdir, "model.safetensors.index.json"))
    assert is_sharded == sharded, f"sharded={is_sharded}"
    if sharded:
        shards = set(json.load(open(os.path.join(mdir, "model.safetensors.index.json")))["weight_map"].values())
        assert len(shards) >= 2, shards
        assert not os.path.exists(os.path.join(mdir, "model.safetensors"))
    if cfg.get("model_type") != "gpt2":
        if old:
            assert "rope_parameters" not in cfg and "dtype" not in cfg, "old format wanted"
            assert "rope_theta" in cfg and cfg["rope_scaling"]["rope_type"] == "llama3", cfg
            assert cfg["torch_dtype"] == "bfloat16"
        else:
            assert "rope_parameters" in cfg and "rope_scaling" not in cfg and "torch_dtype" not in cfg, \
                "transformers-5 format wanted"
    if name == "ref-llama-7m":
        g = fx["generate"]
        assert len(g["newIds"]) >= 1 and isinstance(g["text"], str) and fx["text"]
        # greedy: first new token is the argmax of the last position
        last = logits[(T - 1) * V:T * V]
        assert last.index(max(last)) == g["newIds"][0], "newIds[0] is not argmax of last logits"
    size = os.path.getsize(os.path.join(root, "test/fixtures/conformance", f"{name}.json"))
    mbytes = sum(os.path.getsize(os.path.join(mdir, f)) for f in os.listdir(mdir))
    h = fx.get("config", {})
    print(f"ok {name:16s} T={T:3d} V={V:5d} L={L} H={H} kv={h.get('kvHeads')} hd={h.get('headDim')} "
          f"disk={dtype} tied={tied} sharded={sharded} row-sum err={worst_sum:.1e} max att={peak:.3f} "
          f"fixture={size}B model={mbytes}B")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default=os.path.abspath(os.path.join(HERE, "..", "..")))
    args = ap.parse_args()
    bad = 0
    for name in EXPECT:
        try:
            check(args.root, name)
        except Exception as e:
            bad += 1
            print(f"FAIL {name}: {type(e).__name__}: {e}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
