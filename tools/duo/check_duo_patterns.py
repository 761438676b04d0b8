#!/usr/bin/env python3
"""
Loads headwise-exported DuoAttention pattern folders with DuoAttention's own loader and binariser
(`load_attn_pattern` and `sparsify_attention_heads` from its `duo_attn/utils.py`, which this script
does not contain: pass the folder holding a copy of that file with --duo-src) and checks that the
heads DuoAttention keeps full are exactly the heads headwise chose (the `headwise.fullKvHeads` block
of each folder's config.json, and optionally a list from a headwise --json run).

utils.py imports training-time packages (torch, transformers, accelerate, tensor_parallel, ...) at the
top; the two functions use numpy only, so each one that is not installed is replaced by an empty
module (listed in the JSON as `stubbedImports`). DuoAttention adds random noise (< 1e-6) before thresholding: the binarisation is
repeated for --seeds seeds, with the folder's sparsity and, separately, its threshold alone (a call
that DuoAttention's function may refuse: it compares `sparsity` with numbers even when it is None;
the JSON says so).

Prints one JSON object. Usage:
  python3 check_duo_patterns.py --duo-src DIR --pattern NAME=FOLDER [--pattern ...] [--seeds 20]
"""
import argparse
import importlib
import importlib.util
import json
import os
import sys
import types


class _Stub(types.ModuleType):
    """Stands in for a package utils.py imports at the top but the two functions never use."""

    __path__ = []

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return _Stub(f"{self.__name__}.{attr}")

    def __call__(self, *a, **k):
        return None


def load_duo_utils(src):
    stubbed = []
    for _ in range(50):
        spec = importlib.util.spec_from_file_location("duo_utils", os.path.join(src, "utils.py"))
        utils = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(utils)
            return utils, stubbed
        except ModuleNotFoundError as e:
            parts = e.name.split(".")
            for i in range(1, len(parts) + 1):
                name = ".".join(parts[:i])
                if name not in sys.modules:
                    sys.modules[name] = _Stub(name)
                    stubbed.append(name)
    raise RuntimeError("utils.py still fails to import after stubbing 50 modules")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duo-src", required=True)
    ap.add_argument("--pattern", action="append", required=True, help="NAME=FOLDER")
    ap.add_argument("--seeds", type=int, default=20)
    args = ap.parse_args()
    import numpy as np

    utils, stubbed = load_duo_utils(args.duo_src)
    out = {"tool": "tools/duo/check_duo_patterns.py", "numpy": np.__version__, "stubbedImports": stubbed, "patterns": {}}
    all_ok = True
    for spec in args.pattern:
        name, folder = spec.split("=", 1)
        gates, sink, recent = utils.load_attn_pattern(folder)
        gates = np.atleast_2d(gates)
        cfg = json.load(open(os.path.join(folder, "config.json")))
        expected = sorted(cfg["headwise"]["fullKvHeads"])
        runs = []
        threshold_call = None
        for mode in ["sparsity", "threshold"]:
            for seed in range(args.seeds):
                np.random.seed(seed)
                g = gates.copy()
                try:
                    if mode == "sparsity":
                        binary, sparsity = utils.sparsify_attention_heads(g, sparsity=cfg["sparsity"])
                    else:
                        binary, sparsity = utils.sparsify_attention_heads(g, threshold=cfg["threshold"])
                except Exception as e:  # their threshold-only call compares None with numbers
                    threshold_call = f"{type(e).__name__}: {e}"
                    break
                kept = sorted(f"{l}:{h}" for l, h in zip(*np.nonzero(binary)))
                runs.append({"mode": mode, "seed": seed, "sparsity": float(sparsity), "same": kept == expected})
        ok = bool(runs) and all(r["same"] for r in runs)
        all_ok = all_ok and ok
        out["patterns"][name] = {
            "folder": os.path.basename(os.path.normpath(folder)),
            "shape": list(gates.shape),
            "sinkSize": int(sink),
            "recentSize": int(recent),
            "configSparsity": cfg["sparsity"],
            "configThreshold": cfg["threshold"],
            "headwiseFullKvHeads": expected,
            "runs": len(runs),
            "runsByMode": {m: sum(1 for r in runs if r["mode"] == m) for m in ["sparsity", "threshold"]},
            "thresholdOnlyCall": threshold_call or "ok",
            "allSame": ok,
            "firstRun": runs[0],
        }
    out["allSame"] = all_ok
    print(json.dumps(out, indent=2))
    sys.exit(0 if all_ok else 1)


if __name__ == "__main__":
    main()
