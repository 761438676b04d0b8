#!/usr/bin/env python3
"""PyTorch reference for headwise's activation patching (issue 13 acceptance).

Reads the token ids and headwise's results written by headwise-pairs.mjs, loads the same checkpoint with
Hugging Face transformers (fp32, eager attention), and patches each head's clean output — the slice of
o_proj's input that belongs to the head (TransformerLens' hook_z) — into the corrupt run at the last
position, with forward pre-hooks on o_proj. The metric is the logit difference between the first answer
token and the first wrong token at the last position; restored = (patched − corrupt) / (clean − corrupt).
Prints one JSON object: per pair and head set, PyTorch's value, headwise's, and their difference.

    python3 torch_patch_reference.py MODEL_DIR pairs.json > out.json
"""
import json
import sys

import torch
import transformers
from transformers import AutoModelForCausalLM

model_dir, pairs_file = sys.argv[1], sys.argv[2]
data = json.load(open(pairs_file))
model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32, attn_implementation="eager").eval()
cfg = model.config
D = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
layers = model.model.layers


def logit_diff(ids, answer, wrong, hooks=()):
    handles = [layers[l].self_attn.o_proj.register_forward_pre_hook(fn) for l, fn in hooks]
    try:
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0, -1]
    finally:
        for h in handles:
            h.remove()
    return float(logits[answer] - logits[wrong])


def capture(ids, layer_set):
    z = {}

    def make(l):
        def fn(_mod, args):
            z[l] = args[0][0, -1].clone()
        return fn

    logit_diff(ids, 0, 0, [(l, make(l)) for l in layer_set])
    return z


out = {"transformers": transformers.__version__, "torch": torch.__version__, "model": model_dir, "pairs": [], "maxAbsDiff": 0.0}
for p in data["pairs"]:
    clean = logit_diff(p["clean"], p["answer"], p["wrong"])
    corrupt = logit_diff(p["corrupt"], p["answer"], p["wrong"])
    row = {"clean": clean, "corrupt": corrupt, "sets": {}}
    for name, hw in p["headwise"].items():
        heads = hw["heads"]
        z = capture(p["clean"], {l for l, _ in heads})

        def make(l):
            hs = [h for ll, h in heads if ll == l]

            def fn(_mod, args):
                x = args[0].clone()
                for h in hs:
                    x[0, -1, h * D:(h + 1) * D] = z[l][h * D:(h + 1) * D]
                return (x,)
            return fn

        patched = logit_diff(p["corrupt"], p["answer"], p["wrong"], [(l, make(l)) for l in {l for l, _ in heads}])
        restored = (patched - corrupt) / (clean - corrupt)
        diff = abs(restored - hw["restored"])
        out["maxAbsDiff"] = max(out["maxAbsDiff"], diff)
        row["sets"][name] = {"heads": heads, "torch": restored, "headwise": hw["restored"], "absDiff": diff}
    out["pairs"].append(row)
print(json.dumps(out, indent=1))
