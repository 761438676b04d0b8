#!/usr/bin/env python3
"""Make the conformance fixtures that headwise's TypeScript engine is tested against.

Development tool: CI never runs it (CI has no torch). It needs python3 with torch,
transformers (5.x), safetensors, tokenizers and numpy.

What it does, seeded and deterministic:
  1. builds tiny random-weight checkpoints with transformers and saves them with
     save_pretrained (safetensors) into OUT/models/<name>/;
  2. loads each of them, and the bundled real model models/ref-llama-7m, in fp32 with
     eager attention on the CPU, runs one forward pass with output_attentions=True
     (and for ref-llama-7m a 16-token greedy generate);
  3. writes OUT/conformance/<name>.json (float arrays as base64 of little-endian f32)
     and OUT/conformance/README.md.

Then unpack OUT so that OUT/models -> test/fixtures/models and
OUT/conformance -> test/fixtures/conformance.

    python3 tools/conformance/make_fixtures.py --out /tmp/stage
"""

import argparse
import base64
import json
import os
import platform
import struct
import sys

import numpy as np
import torch
import transformers
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
    Qwen3Config,
    Qwen3ForCausalLM,
)

REPO_ROOT = os.environ.get("HEADWISE_REPO_ROOT") or os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
FIXTURE_MODELS_REL = "test/fixtures/models"
REF_MODEL_REL = "models/ref-llama-7m"
REF_TEXT = (
    " The pass key is 4829371. Remember it. 4829371 is the pass key. "
    "In the beginning God created the heaven and the earth.\n"
    "What is the pass key? The pass key is"
)
N_TINY_IDS = 24
N_NEW_TOKENS = 16

TORCH_VERSION = torch.__version__.split("+")[0]
TF_VERSION = transformers.__version__

LOG = []


def log(*args):
    msg = " ".join(str(a) for a in args)
    LOG.append(msg)
    print(msg, flush=True)


# --------------------------------------------------------------------------- helpers


def f32_b64(t):
    arr = t.detach().to(torch.float32).contiguous().cpu().numpy().astype("<f4", copy=False)
    return {"shape": list(arr.shape), "f32": base64.b64encode(arr.tobytes()).decode("ascii")}


def safetensors_header(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(n).decode("utf-8"))


def tensor_names(model_dir):
    idx = os.path.join(model_dir, "model.safetensors.index.json")
    names = {}
    if os.path.exists(idx):
        with open(idx) as f:
            wm = json.load(f)["weight_map"]
        for shard in sorted(set(wm.values())):
            h = safetensors_header(os.path.join(model_dir, shard))
            for k, v in h.items():
                if k != "__metadata__":
                    names[k] = v["dtype"]
    else:
        h = safetensors_header(os.path.join(model_dir, "model.safetensors"))
        for k, v in h.items():
            if k != "__metadata__":
                names[k] = v["dtype"]
    return names


def init_weights(model, seed):
    """Non-trivial init: N(0, 0.2) for every parameter, norm weights 1 + 0.1*N, norm biases 0.1*N."""
    g = torch.Generator().manual_seed(seed)
    norm_params = set()
    with torch.no_grad():
        for mod in model.modules():
            if "norm" in type(mod).__name__.lower():
                for pname, p in mod.named_parameters(recurse=False):
                    norm_params.add(id(p))
                    noise = torch.randn(p.shape, generator=g, dtype=torch.float32)
                    if pname == "weight":
                        p.copy_(1.0 + 0.1 * noise)
                    else:
                        p.copy_(0.1 * noise)
        # named_parameters() yields a tied parameter once, so ties survive.
        for name, p in model.named_parameters():
            if id(p) in norm_params:
                continue
            p.copy_(0.2 * torch.randn(p.shape, generator=g, dtype=torch.float32))


def save_model(model, out_dir, dtype, max_shard_size=None):
    os.makedirs(out_dir, exist_ok=True)
    model = model.to(dtype)
    try:
        model.config.dtype = dtype
    except Exception:
        model.config.torch_dtype = dtype
    kwargs = {}
    if max_shard_size is not None:
        kwargs["max_shard_size"] = max_shard_size
    try:
        model.save_pretrained(out_dir, safe_serialization=True, **kwargs)
    except TypeError:
        # transformers 5 may have dropped the argument (safetensors is the only format)
        model.save_pretrained(out_dir, **kwargs)
    # generation_config.json is not needed by headwise; keep the fixture dirs small and obvious
    gc = os.path.join(out_dir, "generation_config.json")
    if os.path.exists(gc):
        os.remove(gc)


def load_fp32(model_dir):
    kw = dict(attn_implementation="eager")
    try:
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, **kw)
    except TypeError:
        model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32, **kw)
    model.eval()
    assert next(model.parameters()).dtype == torch.float32
    impl = getattr(model.config, "_attn_implementation", None)
    if impl != "eager":
        log(f"  !! attn implementation is {impl!r}, wanted eager")
    return model


def forward(model, ids):
    input_ids = torch.tensor([ids], dtype=torch.long)
    with torch.no_grad():
        out = model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                    output_attentions=True, use_cache=False)
    atts = out.attentions
    how = "output_attentions=True kwarg"
    if not atts or any(a is None for a in atts):
        log("  !! attentions missing with the kwarg; retrying with config.output_attentions=True")
        model.config.output_attentions = True
        with torch.no_grad():
            out = model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), use_cache=False)
        atts = out.attentions
        how = "config.output_attentions=True"
    assert atts and all(a is not None for a in atts), "no attentions returned"
    logits = out.logits[0]  # [T, V]
    att = torch.stack([a[0] for a in atts])  # [L, H, T, T]
    T = len(ids)
    assert logits.shape[0] == T and att.shape[-1] == T and att.shape[-2] == T
    rows = att.sum(-1)
    assert torch.allclose(rows, torch.ones_like(rows), atol=1e-5), "attention rows do not sum to 1"
    return logits, att, how


def config_summary(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        c = json.load(f)
    return c


# --------------------------------------------------------------------------- tiny models

COMMON_DECODER = dict(
    vocab_size=320,
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    max_position_embeddings=128,
    rms_norm_eps=1e-5,
    bos_token_id=0,
    eos_token_id=1,
    pad_token_id=None,
    attention_dropout=0.0,
)


def rope_kwargs(theta, extra=None):
    """rope settings in transformers-5 form (rope_parameters), falling back to the 4.x form."""
    rp = {"rope_type": "default", "rope_theta": theta}
    if extra:
        rp.update(extra)
    return rp


def make_config(cls, rope_params, **kw):
    try:
        cfg = cls(rope_parameters=rope_params, **kw)
        got = getattr(cfg, "rope_parameters", None)
        if not got or got.get("rope_type") != rope_params["rope_type"]:
            raise TypeError("rope_parameters not honoured")
    except TypeError:
        scaling = {k: v for k, v in rope_params.items() if k != "rope_theta"}
        cfg = cls(rope_theta=rope_params["rope_theta"],
                  rope_scaling=None if scaling["rope_type"] == "default" else scaling, **kw)
    return cfg


LLAMA3_ROPE = {
    "rope_type": "llama3",
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 16,
}


def tiny_specs():
    return TINY_SPECS_V1 + new_family_specs()


def _tiny_specs_v1():
    return [
        dict(
            name="tiny-llama",
            cls=LlamaForCausalLM,
            config=lambda: make_config(
                LlamaConfig, rope_kwargs(500000.0, LLAMA3_ROPE),
                num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False,
                **COMMON_DECODER),
            dtype=torch.bfloat16,
            old_format=True,
            seed=101,
        ),
        dict(
            name="tiny-llama-tied",
            cls=LlamaForCausalLM,
            config=lambda: make_config(
                LlamaConfig, rope_kwargs(10000.0),
                num_attention_heads=4, num_key_value_heads=4, tie_word_embeddings=True,
                **COMMON_DECODER),
            dtype=torch.float16,
            seed=102,
        ),
        dict(
            name="tiny-mistral",
            cls=MistralForCausalLM,
            config=lambda: make_config(
                MistralConfig, rope_kwargs(1000000.0),
                num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False,
                sliding_window=None, **COMMON_DECODER),
            dtype=torch.float32,
            max_shard_size="200KB",
            seed=103,
        ),
        dict(
            name="tiny-qwen2",
            cls=Qwen2ForCausalLM,
            config=lambda: make_config(
                Qwen2Config, rope_kwargs(1000000.0),
                num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
                use_sliding_window=False, sliding_window=None, **COMMON_DECODER),
            dtype=torch.float32,
            seed=104,
        ),
        dict(
            name="tiny-qwen3",
            cls=Qwen3ForCausalLM,
            config=lambda: make_config(
                Qwen3Config, rope_kwargs(1000000.0),
                num_attention_heads=4, num_key_value_heads=2, head_dim=32,
                tie_word_embeddings=False, use_sliding_window=False, sliding_window=None,
                attention_bias=False, **COMMON_DECODER),
            dtype=torch.float32,
            seed=105,
        ),
        dict(
            name="tiny-gpt2",
            cls=GPT2LMHeadModel,
            config=lambda: GPT2Config(
                vocab_size=320, n_positions=64, n_embd=64, n_layer=2, n_head=4,
                activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                layer_norm_epsilon=1e-5, bos_token_id=0, eos_token_id=0, tie_word_embeddings=True),
            dtype=torch.float32,
            seed=106,
        ),
    ]


TINY_SPECS_V1 = _tiny_specs_v1()


# --------------------------------------------------------------------------- more families (issue 12)
# Built through AutoConfig.for_model / AutoModelForCausalLM.from_config, so no class imports. Inputs
# (N_LONG_IDS tokens) are longer than every sliding window (WINDOW) and than the original context
# (ORIG_POS) of every scaled RoPE.

N_LONG_IDS = 40
WINDOW = 8
ORIG_POS = 16

BASE = dict(
    vocab_size=320, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
    num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
    bos_token_id=0, eos_token_id=1, pad_token_id=None, attention_dropout=0.0,
    tie_word_embeddings=False,
)


def auto_config(model_type, rope=None, legacy=None, **kw):
    """AutoConfig for `model_type` with rope settings in transformers-5 form (`rope_parameters`),
    falling back to the legacy kwargs `legacy` (rope_theta / rope_scaling / ...) if refused."""
    from transformers import AutoConfig
    args = dict(BASE)
    args.update(kw)
    args = {k: v for k, v in args.items() if v is not _DROP}
    if rope is not None:
        try:
            cfg = AutoConfig.for_model(model_type, rope_parameters=rope, **args)
            got = getattr(cfg, "rope_parameters", None)
            if got:
                return cfg
            log(f"  !! {model_type}: rope_parameters not kept; using legacy kwargs")
        except Exception as e:  # noqa: BLE001
            log(f"  !! {model_type}: rope_parameters refused ({e!r}); using legacy kwargs")
        args.update(legacy or {})
    return AutoConfig.for_model(model_type, **args)


_DROP = object()
FACTORS_SHORT = [1.0, 1.05, 1.1, 1.2, 1.3, 1.5, 1.8, 2.0]
FACTORS_LONG = [1.0, 1.3, 1.7, 2.5, 3.5, 5.0, 7.0, 9.0]


def new_family_specs():
    S = []

    def add(name, seed, cfg, **extra):
        S.append(dict(name=name, cls=None, config=cfg, dtype=torch.float32, seed=seed, n_ids=N_LONG_IDS, **extra))

    add("tiny-mistral-swa", 201, lambda: auto_config(
        "mistral", {"rope_type": "linear", "factor": 2.0, "rope_theta": 10000.0},
        {"rope_theta": 10000.0, "rope_scaling": {"rope_type": "linear", "factor": 2.0}},
        sliding_window=WINDOW, rms_norm_eps=1e-5))
    add("tiny-qwen2-swa", 202, lambda: auto_config(
        "qwen2", {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": ORIG_POS, "rope_theta": 10000.0},
        {"rope_theta": 10000.0, "rope_scaling": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": ORIG_POS}},
        use_sliding_window=True, sliding_window=WINDOW, max_window_layers=1, rms_norm_eps=1e-5))
    add("tiny-llama-dynamic", 203, lambda: auto_config(
        "llama", {"rope_type": "dynamic", "factor": 2.0, "original_max_position_embeddings": ORIG_POS, "rope_theta": 10000.0},
        {"rope_theta": 10000.0, "rope_scaling": {"rope_type": "dynamic", "factor": 2.0, "original_max_position_embeddings": ORIG_POS}},
        rms_norm_eps=1e-5))
    add("tiny-qwen3-yarn", 204, lambda: auto_config(
        "qwen3", {"rope_type": "yarn", "factor": 2.0, "original_max_position_embeddings": ORIG_POS, "rope_theta": 1000000.0,
                  "beta_fast": 16.0, "beta_slow": 2.0},
        {"rope_theta": 1000000.0, "rope_scaling": {"rope_type": "yarn", "factor": 2.0, "original_max_position_embeddings": ORIG_POS,
                                                   "beta_fast": 16.0, "beta_slow": 2.0}},
        head_dim=16, use_sliding_window=False, sliding_window=None, rms_norm_eps=1e-5))
    add("tiny-gemma", 205, lambda: auto_config(
        "gemma", {"rope_type": "default", "rope_theta": 10000.0}, {"rope_theta": 10000.0},
        head_dim=16, num_key_value_heads=1, hidden_activation="gelu_pytorch_tanh", hidden_act="gelu_pytorch_tanh",
        rms_norm_eps=1e-6, tie_word_embeddings=True))
    add("tiny-gemma2", 206, lambda: auto_config(
        "gemma2", {"rope_type": "default", "rope_theta": 10000.0}, {"rope_theta": 10000.0},
        head_dim=16, hidden_activation="gelu_pytorch_tanh", hidden_act="gelu_pytorch_tanh", query_pre_attn_scalar=24,
        attn_logit_softcapping=5.0, final_logit_softcapping=3.0, sliding_window=WINDOW, rms_norm_eps=1e-6,
        tie_word_embeddings=True))
    add("tiny-gemma3", 207, lambda: auto_config(
        "gemma3_text",
        {"sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
         "full_attention": {"rope_type": "linear", "factor": 2.0, "rope_theta": 1000000.0}},
        {"rope_theta": 1000000.0, "rope_local_base_freq": 10000.0, "rope_scaling": {"rope_type": "linear", "factor": 2.0}},
        head_dim=16, hidden_activation="gelu_pytorch_tanh", query_pre_attn_scalar=16, sliding_window=WINDOW,
        layer_types=["sliding_attention", "full_attention"], rms_norm_eps=1e-6, tie_word_embeddings=True))
    add("tiny-phi3", 208, lambda: auto_config(
        "phi3",
        {"rope_type": "longrope", "rope_theta": 10000.0, "short_factor": FACTORS_SHORT, "long_factor": FACTORS_LONG,
         "original_max_position_embeddings": ORIG_POS},
        {"rope_theta": 10000.0, "rope_scaling": {"type": "longrope", "short_factor": FACTORS_SHORT, "long_factor": FACTORS_LONG}},
        original_max_position_embeddings=ORIG_POS, rms_norm_eps=1e-5, sliding_window=None))
    add("tiny-phi", 209, lambda: auto_config(
        "phi", {"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5},
        {"rope_theta": 10000.0, "partial_rotary_factor": 0.5},
        num_key_value_heads=4, hidden_act="gelu_new", layer_norm_eps=1e-5, qk_layernorm=False,
        resid_pdrop=0.0, embd_pdrop=0.0, partial_rotary_factor=0.5))
    add("tiny-gpt-neox", 210, lambda: auto_config(
        "gpt_neox", {"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.25},
        {"rotary_emb_base": 10000, "rotary_pct": 0.25},
        num_key_value_heads=_DROP, hidden_act="gelu", layer_norm_eps=1e-5, use_parallel_residual=True,
        rotary_pct=0.25, attention_bias=True, hidden_dropout=0.0))
    add("tiny-olmo2", 211, lambda: auto_config(
        "olmo2", {"rope_type": "default", "rope_theta": 10000.0}, {"rope_theta": 10000.0}, rms_norm_eps=1e-6))
    add("tiny-olmo", 212, lambda: auto_config(
        "olmo", {"rope_type": "default", "rope_theta": 10000.0}, {"rope_theta": 10000.0}, clip_qkv=2.0))
    add("tiny-granite", 213, lambda: auto_config(
        "granite", {"rope_type": "default", "rope_theta": 10000.0}, {"rope_theta": 10000.0},
        embedding_multiplier=3.0, residual_multiplier=0.5, attention_multiplier=0.2, logits_scaling=4.0,
        rms_norm_eps=1e-6))
    add("tiny-mixtral", 214, lambda: auto_config(
        "mixtral", {"rope_type": "default", "rope_theta": 1000000.0}, {"rope_theta": 1000000.0},
        intermediate_size=64, num_local_experts=4, num_experts_per_tok=2, sliding_window=None,
        router_jitter_noise=0.0, rms_norm_eps=1e-5))
    add("tiny-qwen2-moe", 215, lambda: auto_config(
        "qwen2_moe", {"rope_type": "default", "rope_theta": 1000000.0}, {"rope_theta": 1000000.0},
        num_experts=4, num_experts_per_tok=2, moe_intermediate_size=32, shared_expert_intermediate_size=64,
        norm_topk_prob=False, decoder_sparse_step=1, mlp_only_layers=[], use_sliding_window=False,
        sliding_window=None, rms_norm_eps=1e-6))
    add("tiny-qwen3-moe", 216, lambda: auto_config(
        "qwen3_moe", {"rope_type": "default", "rope_theta": 1000000.0}, {"rope_theta": 1000000.0},
        head_dim=16, num_experts=4, num_experts_per_tok=2, moe_intermediate_size=32, norm_topk_prob=True,
        decoder_sparse_step=1, mlp_only_layers=[], use_sliding_window=False, sliding_window=None, rms_norm_eps=1e-6))
    add("tiny-starcoder2", 217, lambda: auto_config(
        "starcoder2", {"rope_type": "default", "rope_theta": 10000.0}, {"rope_theta": 10000.0},
        hidden_act="gelu_pytorch_tanh", use_bias=True, norm_epsilon=1e-5, sliding_window=WINDOW,
        residual_dropout=0.0, embedding_dropout=0.0))
    add("tiny-stablelm", 218, lambda: auto_config(
        "stablelm", {"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.25},
        {"rope_theta": 10000.0, "partial_rotary_factor": 0.25},
        partial_rotary_factor=0.25, use_qkv_bias=True, qk_layernorm=True, use_parallel_residual=False,
        layer_norm_eps=1e-5, hidden_dropout=0.0))
    add("tiny-stablelm-parallel", 219, lambda: auto_config(
        "stablelm", {"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5},
        {"rope_theta": 10000.0, "partial_rotary_factor": 0.5},
        partial_rotary_factor=0.5, use_qkv_bias=False, qk_layernorm=False, use_parallel_residual=True,
        layer_norm_eps=1e-5, hidden_dropout=0.0))
    # Code paths the first set leaves out: a dense layer in an MoE model, NeoX's sequential residual,
    # Phi-3 with partial rotary and a sliding window.
    add("tiny-qwen2-moe-mixed", 220, lambda: auto_config(
        "qwen2_moe", {"rope_type": "default", "rope_theta": 1000000.0}, {"rope_theta": 1000000.0},
        num_experts=4, num_experts_per_tok=2, moe_intermediate_size=32, shared_expert_intermediate_size=64,
        norm_topk_prob=True, decoder_sparse_step=2, mlp_only_layers=[], use_sliding_window=False,
        sliding_window=None, rms_norm_eps=1e-6))
    add("tiny-gpt-neox-seq", 221, lambda: auto_config(
        "gpt_neox", {"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5},
        {"rotary_emb_base": 10000, "rotary_pct": 0.5},
        num_key_value_heads=_DROP, hidden_act="gelu", layer_norm_eps=1e-5, use_parallel_residual=False,
        rotary_pct=0.5, attention_bias=True, hidden_dropout=0.0))
    add("tiny-phi3-swa", 222, lambda: auto_config(
        "phi3", {"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5},
        {"rope_theta": 10000.0, "partial_rotary_factor": 0.5},
        partial_rotary_factor=0.5, rms_norm_eps=1e-5, sliding_window=WINDOW))
    return S


def tensor_shapes(model_dir):
    out = {}
    for fn in sorted(os.listdir(model_dir)):
        if fn.endswith(".safetensors"):
            h = safetensors_header(os.path.join(model_dir, fn))
            for k, v in h.items():
                if k != "__metadata__":
                    out[k] = [v["dtype"], v["shape"]]
    return out


# --------------------------------------------------------------------------- per-layer hook values


def _first(x):
    return x[0] if isinstance(x, (tuple, list)) else x


def capture_hooks(model, ids, name, out_root):
    """Per-layer intermediate values under TransformerLens names, from PyTorch hooks and a wrapper
    around each modeling module's eager attention function. Written to OUT/hooks/<name>.json.
    Never fatal: a failure is logged and the fixture is still written."""
    try:
        _capture_hooks(model, ids, name, out_root)
    except Exception as e:  # noqa: BLE001
        import traceback
        traceback.print_exc()
        log(f"  !! hooks for {name} failed: {e!r}")


def _capture_hooks(model, ids, name, out_root):
    import torch.nn as nn
    cfg = model.config
    L = cfg.num_hidden_layers
    layers = None
    for _, m in model.named_modules():
        if isinstance(m, nn.ModuleList) and len(m) == L:
            layers = m
            break
    assert layers is not None, "no decoder layer list"
    rec = {}
    calls = []
    patched = []
    modules = {sys.modules[type(m).__module__] for m in model.modules()}
    for mod in modules:
        orig = getattr(mod, "eager_attention_forward", None)
        if orig is None:
            continue

        def make(orig):
            def wrapped(module, query, key, value, attention_mask, *a, **kw):
                out = orig(module, query, key, value, attention_mask, *a, **kw)
                calls.append((module, query, key, value, out, a, kw))
                return out
            return wrapped
        setattr(mod, "eager_attention_forward", make(orig))
        patched.append((mod, orig))

    def attn_of(layer):
        for n in ("self_attn", "attn", "attention"):
            if hasattr(layer, n):
                return getattr(layer, n)

    def mlp_of(layer):
        for n in ("mlp", "block_sparse_moe", "feed_forward"):
            if hasattr(layer, n):
                return getattr(layer, n)

    handles = []
    for l, layer in enumerate(layers):
        def pre(mod, args, kwargs, l=l):
            hs = args[0] if args else kwargs["hidden_states"]
            rec[f"blocks.{l}.hook_resid_pre"] = hs[0]
        def post(mod, args, kwargs, out, l=l):
            rec[f"blocks.{l}.hook_resid_post"] = _first(out)[0]
        handles.append(layer.register_forward_pre_hook(pre, with_kwargs=True))
        handles.append(layer.register_forward_hook(post, with_kwargs=True))
        a = attn_of(layer)
        if a is not None:
            handles.append(a.register_forward_hook(lambda m, i, o, l=l: rec.__setitem__(f"blocks.{l}.hook_attn_out", _first(o)[0])))
        m = mlp_of(layer)
        if m is not None:
            handles.append(m.register_forward_hook(lambda mm, i, o, l=l: rec.__setitem__(f"blocks.{l}.hook_mlp_out", _first(o)[0])))
        pf = getattr(layer, "post_feedforward_layernorm", None)
        if pf is not None:
            handles.append(pf.register_forward_hook(lambda mm, i, o, l=l: rec.__setitem__(f"_mlp_branch.{l}", _first(o)[0])))
    final = None
    for path in ("model.norm", "transformer.ln_f", "gpt_neox.final_layer_norm", "model.final_layernorm"):
        try:
            final = model.get_submodule(path)
            break
        except AttributeError:
            continue
    if final is not None:
        handles.append(final.register_forward_hook(lambda m, i, o: rec.__setitem__("ln_final.hook_normalized", _first(o)[0])))
    try:
        with torch.no_grad():
            input_ids = torch.tensor([ids], dtype=torch.long)
            model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), use_cache=False, output_attentions=True)
    finally:
        for h in handles:
            h.remove()
        for mod, orig in patched:
            setattr(mod, "eager_attention_forward", orig)
    assert len(calls) == L, f"{len(calls)} eager attention calls for {L} layers"
    parallel = bool(getattr(cfg, "use_parallel_residual", False)) or cfg.model_type == "phi"
    for l, (module, q, k, v, out, a, kw) in enumerate(calls):
        l = getattr(module, "layer_idx", None) if getattr(module, "layer_idx", None) is not None else l
        z = _first(out)[0]  # [T, H, D]
        q0, k0, v0 = q[0], k[0], v[0]  # [H, T, D], [Hkv, T, D]
        rec[f"blocks.{l}.attn.hook_q"] = q0.transpose(0, 1)
        rec[f"blocks.{l}.attn.hook_k"] = k0.transpose(0, 1)
        rec[f"blocks.{l}.attn.hook_v"] = v0.transpose(0, 1)
        rep = q0.shape[0] // k0.shape[0]
        kk = k0.repeat_interleave(rep, dim=0)
        scaling = kw.get("scaling", a[0] if a else getattr(module, "scaling", q0.shape[-1] ** -0.5))
        if scaling is None:
            scaling = q0.shape[-1] ** -0.5
        s = torch.matmul(q0, kk.transpose(1, 2)) * scaling
        cap = kw.get("softcap")
        if cap:
            s = torch.tanh(s / cap) * cap
        rec[f"blocks.{l}.attn.hook_attn_scores"] = s
        rec[f"blocks.{l}.attn.hook_z"] = z
        o = None
        for n in ("o_proj", "dense", "c_proj", "out_proj"):
            if hasattr(module, n):
                o = getattr(module, n)
                break
        if o is not None:
            H, D = z.shape[1], z.shape[2]
            W = o.weight
            if type(o).__name__ == "Conv1D":
                per = torch.stack([z[:, h] @ W[h * D:(h + 1) * D, :] for h in range(H)], 1)
            else:
                per = torch.stack([z[:, h] @ W[:, h * D:(h + 1) * D].T for h in range(H)], 1)
            rec[f"blocks.{l}.attn.hook_result"] = per
        if not parallel and f"blocks.{l}.hook_mlp_out" in rec:
            branch = rec.pop(f"_mlp_branch.{l}", None)
            if branch is None:
                branch = rec[f"blocks.{l}.hook_mlp_out"]
            mult = getattr(cfg, "residual_multiplier", 1.0) if cfg.model_type == "granite" else 1.0
            rec[f"blocks.{l}.hook_resid_mid"] = rec[f"blocks.{l}.hook_resid_post"] - mult * branch
    for key in [k for k in rec if k.startswith("_")]:
        del rec[key]
    hooks_dir = os.path.join(out_root, "hooks")
    os.makedirs(hooks_dir, exist_ok=True)
    doc = {
        "model": name,
        "transformers": TF_VERSION,
        "torch": TORCH_VERSION,
        "inputIds": ids,
        "notes": [
            "shapes drop the batch axis; per-head values are [pos, head, d_head] (hook_q/k/v after RoPE and q/k norm, "
            "hook_v per KV head), hook_attn_scores [head, query, key] scaled (and soft-capped) before the causal mask, "
            "hook_result [pos, head, d_model] = hook_z of the head times its slice of the output projection (no bias)",
            "hook_resid_mid = hook_resid_post minus the MLP branch (after its post-norm / residual multiplier); "
            "absent for parallel-residual blocks",
        ],
        "values": {k: f32_b64(v) for k, v in sorted(rec.items())},
    }
    path = os.path.join(hooks_dir, f"{name}.json")
    with open(path, "w") as f:
        json.dump(doc, f)
    log(f"  hooks: {len(rec)} values -> {path} ({os.path.getsize(path)} bytes)")


def to_old_format(model_dir):
    """Rewrite a transformers-5 config.json into the 4.x layout: top-level rope_theta,
    rope_scaling (with rope_type) and torch_dtype."""
    path = os.path.join(model_dir, "config.json")
    with open(path) as f:
        c = json.load(f)
    new = {}
    rp = c.get("rope_parameters")
    for k, v in c.items():
        if k == "rope_parameters":
            if rp is not None:
                new["rope_theta"] = rp["rope_theta"]
                scaling = {kk: vv for kk, vv in rp.items() if kk != "rope_theta"}
                new["rope_scaling"] = None if scaling.get("rope_type") == "default" else scaling
        elif k == "dtype":
            new["torch_dtype"] = v
        elif k == "transformers_version":
            new[k] = "4.46.0"
        else:
            new[k] = v
    if "rope_theta" not in new and "rope_theta" in c:
        new["rope_theta"] = c["rope_theta"]
    assert "rope_parameters" not in new and "dtype" not in new
    assert "rope_theta" in new and new.get("rope_scaling", {}).get("rope_type") == "llama3", new
    assert "torch_dtype" in new
    with open(path, "w") as f:
        json.dump(new, f, indent=2, sort_keys=True)
        f.write("\n")
    return new


def rope_of(cfg):
    rp = getattr(cfg, "rope_parameters", None)
    if rp:
        return dict(rp)
    d = {"rope_theta": getattr(cfg, "rope_theta", None)}
    if getattr(cfg, "rope_scaling", None):
        d.update(cfg.rope_scaling)
    return d


def highlights(name, cfg_json, names, model_dir):
    c = cfg_json
    mt = c.get("model_type")
    if mt == "gpt2":
        heads, kv, hidden, layers = c["n_head"], c["n_head"], c["n_embd"], c["n_layer"]
        head_dim = hidden // heads
    else:
        heads = c["num_attention_heads"]
        kv = c.get("num_key_value_heads", heads)
        hidden, layers = c["hidden_size"], c["num_hidden_layers"]
        head_dim = c.get("head_dim") or hidden // heads
    disk_dtypes = sorted(set(names.values()))
    has_lm_head = any(k.startswith("lm_head") or k == "embed_out.weight" for k in names)
    sharded = os.path.exists(os.path.join(model_dir, "model.safetensors.index.json"))
    fmt = "old(4.x: rope_theta/rope_scaling/torch_dtype)" if ("rope_scaling" in c or "torch_dtype" in c) \
        else "transformers-5 (rope_parameters/dtype)"
    if mt == "gpt2":
        fmt = "gpt2 (no rope)" + (", dtype" if "dtype" in c else "")
    return {
        "modelType": mt,
        "architecture": (c.get("architectures") or [None])[0],
        "layers": layers,
        "hidden": hidden,
        "heads": heads,
        "kvHeads": kv,
        "headDim": head_dim,
        "vocab": c.get("vocab_size"),
        "dtypeOnDisk": disk_dtypes,
        "tiedEmbeddings": not has_lm_head,
        "tieWordEmbeddingsConfig": c.get("tie_word_embeddings"),
        "sharded": sharded,
        "configFormat": fmt,
        "rope": c.get("rope_parameters") or ({"rope_theta": c.get("rope_theta"), **(c.get("rope_scaling") or {})}
                                             if "rope_theta" in c else None),
        "tensors": len(names),
    }


def build_tiny(spec, out_root):
    name = spec["name"]
    model_dir = os.path.join(out_root, "models", name)
    log(f"== {name}")
    torch.manual_seed(spec["seed"])
    cfg = spec["config"]()
    try:
        cfg._attn_implementation = "eager"
    except Exception:
        pass
    model = spec["cls"](cfg) if spec.get("cls") else AutoModelForCausalLM.from_config(cfg)
    model.eval()
    init_weights(model, spec["seed"])
    orig_rope = rope_of(cfg) if spec["cls"] is not GPT2LMHeadModel else None
    save_model(model, model_dir, spec["dtype"], spec.get("max_shard_size"))

    g = torch.Generator().manual_seed(1000 + spec["seed"])
    ids = [0] + torch.randint(0, cfg.vocab_size, (spec.get("n_ids", N_TINY_IDS) - 1,), generator=g).tolist()

    pre_old_logits = None
    if spec.get("old_format"):
        # forward with the config as transformers 5 wrote it, then rewrite to the old layout and
        # check that transformers reads the old layout to the very same model.
        m = load_fp32(model_dir)
        pre_old_logits, pre_old_att, _ = forward(m, ids)
        del m
        with open(os.path.join(model_dir, "config.json")) as f:
            log("  config.json as transformers wrote it:", json.dumps(json.load(f), sort_keys=True))
        to_old_format(model_dir)

    model = load_fp32(model_dir)
    notes = []
    if orig_rope is not None:
        got = rope_of(model.config)
        for k, v in orig_rope.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                same = k in got and got[k] is not None and abs(float(got[k]) - float(v)) < 1e-9
            else:
                same = got.get(k) == v
            if not same:
                msg = f"{name}: rope param {k} changed on reload: {v!r} -> {got.get(k)!r}"
                log("  !! " + msg)
                notes.append(msg)
        log(f"  rope after reload: {got}")
    logits, att, how = forward(model, ids)
    capture_hooks(model, ids, name, out_root)
    if pre_old_logits is not None:
        diff = (logits - pre_old_logits).abs().max().item()
        log(f"  old-format config reload vs transformers-5 config: max abs diff {diff}")
        if diff != 0.0:
            msg = (f"transformers {TF_VERSION} read the old-format config to a different model "
                   f"(max abs logit diff {diff}); the fixture holds the transformers-5-format result")
            log("  !! " + msg)
            notes.append(msg)
            model = None
            logits, att = pre_old_logits, pre_old_att

    names = tensor_names(model_dir)
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg_json = json.load(f)
    log("  config.json:", json.dumps(cfg_json, sort_keys=True))
    log("  tensors:", json.dumps(tensor_shapes(model_dir)))
    hl = highlights(name, cfg_json, names, model_dir)
    log("  files:", sorted(os.listdir(model_dir)))
    log("  highlights:", json.dumps(hl))
    log(f"  logits {tuple(logits.shape)} absmax {logits.abs().max().item():.3f}; attentions {tuple(att.shape)} "
        f"max weight {att.max().item():.3f} ({how})")
    fixture = {
        "model": name,
        "modelDir": f"{FIXTURE_MODELS_REL}/{name}",
        "transformers": TF_VERSION,
        "torch": TORCH_VERSION,
        "attnImplementation": "eager",
        "computeDtype": "float32",
        "inputIds": ids,
        "logits": f32_b64(logits),
        "attentions": f32_b64(att),
        "config": hl,
    }
    if notes:
        fixture["notes"] = notes
    return fixture


# --------------------------------------------------------------------------- ref-llama-7m


def build_ref(out_root):
    from tokenizers import Tokenizer

    name = "ref-llama-7m"
    model_dir = os.path.join(REPO_ROOT, REF_MODEL_REL)
    log(f"== {name}")
    raw = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    raw_ids = raw.encode(REF_TEXT).ids
    tok = AutoTokenizer.from_pretrained(model_dir)
    hf_ids = tok(REF_TEXT)["input_ids"]
    log(f"  tokenizers ids ({len(raw_ids)}): {raw_ids}")
    log(f"  AutoTokenizer ids ({len(hf_ids)}): {hf_ids}  class {type(tok).__name__}")
    ids = list(hf_ids)
    assert ids[0] == 0, "expected BOS id 0 first"

    model = load_fp32(model_dir)
    logits, att, how = forward(model, ids)
    capture_hooks(model, ids, name, out_root)

    input_ids = torch.tensor([ids], dtype=torch.long)
    with torch.no_grad():
        gen = model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                             max_new_tokens=N_NEW_TOKENS, do_sample=False, num_beams=1,
                             pad_token_id=0)
    new_ids = gen[0, len(ids):].tolist()
    text = tok.decode(new_ids, skip_special_tokens=False)
    raw_text = raw.decode(new_ids, skip_special_tokens=False)
    log(f"  generate: {new_ids} -> {text!r} (tokenizers decode {raw_text!r})")
    # greedy check: the first new token is the argmax of the last forward position
    assert new_ids[0] == int(logits[-1].argmax()), "generate's first token is not the forward argmax"

    names = tensor_names(model_dir)
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg_json = json.load(f)
    hl = highlights(name, cfg_json, names, model_dir)
    log("  highlights:", json.dumps(hl))
    log(f"  logits {tuple(logits.shape)}; attentions {tuple(att.shape)} ({how})")
    fixture = {
        "model": name,
        "modelDir": REF_MODEL_REL,
        "transformers": TF_VERSION,
        "torch": TORCH_VERSION,
        "attnImplementation": "eager",
        "computeDtype": "float32",
        "text": REF_TEXT,
        "inputIds": ids,
        "logits": f32_b64(logits),
        "attentions": f32_b64(att),
        "generate": {
            "maxNewTokens": N_NEW_TOKENS,
            "doSample": False,
            "newIds": new_ids,
            "text": text,
        },
        "config": hl,
    }
    if raw_ids != hf_ids:
        fixture["tokenizersLibIds"] = raw_ids
        log("  !! tokenizers library and AutoTokenizer disagree; inputIds are AutoTokenizer's")
    if raw_text != text:
        fixture["generate"]["tokenizersLibText"] = raw_text
    return fixture


# --------------------------------------------------------------------------- main


README = """# Conformance fixtures (Hugging Face transformers reference outputs)

Reference outputs that headwise's TypeScript engine is tested against (max abs diff <= 1e-4).
Each `<name>.json` holds, for one checkpoint, the fp32 forward pass of Hugging Face
transformers (PyTorch, CPU, `attn_implementation="eager"`, `output_attentions=True`,
`use_cache=False`) on fixed `inputIds`:

- `logits`: shape `[T, V]`; `attentions`: shape `[L, H, T, T]` (softmaxed attention weights,
  causal, rows sum to 1);
  float arrays are `{{"shape": [...], "f32": "<base64 of little-endian float32, row-major>"}}`;
- `modelDir`: the checkpoint, relative to the repo root. Tiny random-weight checkpoints live in
  `test/fixtures/models/<name>/`; `ref-llama-7m` is the bundled `models/ref-llama-7m`;
- `config`: highlights of the checkpoint (heads, kv heads, head_dim, on-disk dtype, tied, sharded,
  config format) for test names and assertions;
- `ref-llama-7m.json` also has `text` (tokenized with its tokenizer.json via `AutoTokenizer`; the
  post-processor puts BOS id 0 first) and `generate` (greedy, `do_sample=False`, {n_new} new tokens:
  `newIds` and their decoded `text`).

Checkpoints were built with transformers' own classes, initialised N(0, 0.2) (norm weights
1 + 0.1·N(0,1), norm biases 0.1·N(0,1)), saved with `save_pretrained` in the dtype listed, and
loaded back (upcast to fp32) for the reference pass, so the fixture is what HF computes from the
file on disk.

| model | family | layers | heads / kv | head_dim | on disk | tied | sharded | config format |
| --- | --- | --- | --- | --- | --- | --- | --- | --- |
{table}

`tiny-llama`'s config.json was rewritten after saving into the transformers 4.x layout
(top-level `rope_theta`, `rope_scaling` with `rope_type: llama3`, `torch_dtype`); the script checks
that transformers {tf} loads it to the same model (identical logits) as the 5.x layout it wrote.

Made with (development tool, needs torch; CI never runs it):

    python3 tools/conformance/make_fixtures.py --out STAGE
    # then STAGE/models/* -> test/fixtures/models/, STAGE/conformance/* -> test/fixtures/conformance/

Versions: transformers {tf}, torch {torch_full}, tokenizers {tok}, safetensors {st}, Python {py}.
Check without torch: `python3 tools/conformance/check_fixtures.py`.
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output root: writes models/ and conformance/ under it")
    ap.add_argument("--only", default=None, help="comma-separated model names (debugging)")
    args = ap.parse_args()

    torch.manual_seed(0)
    torch.set_grad_enabled(False)
    out_root = os.path.abspath(args.out)
    conf_dir = os.path.join(out_root, "conformance")
    os.makedirs(conf_dir, exist_ok=True)
    log(f"transformers {TF_VERSION}, torch {torch.__version__}, python {platform.python_version()}")
    only = set(args.only.split(",")) if args.only else None

    fixtures = []
    failures = []
    for spec in tiny_specs():
        if only and spec["name"] not in only:
            continue
        try:
            fixtures.append(build_tiny(spec, out_root))
        except Exception as e:  # keep going: one model's failure should not cost the whole run
            import traceback
            traceback.print_exc()
            failures.append((spec["name"], repr(e)))
    if not only or "ref-llama-7m" in only:
        try:
            fixtures.append(build_ref(out_root))
        except Exception as e:
            import traceback
            traceback.print_exc()
            failures.append(("ref-llama-7m", repr(e)))

    for fx in fixtures:
        path = os.path.join(conf_dir, f"{fx['model']}.json")
        with open(path, "w") as f:
            json.dump(fx, f, indent=1)
            f.write("\n")
        log(f"wrote {path} ({os.path.getsize(path)} bytes)")

    rows = []
    for fx in fixtures:
        h = fx["config"]
        rows.append(f"| {fx['model']} | {h['architecture']} | {h['layers']} | {h['heads']} / {h['kvHeads']} | "
                    f"{h['headDim']} | {', '.join(h['dtypeOnDisk'])} | {'yes' if h['tiedEmbeddings'] else 'no'} | "
                    f"{'yes' if h['sharded'] else 'no'} | {h['configFormat']} |")
    import safetensors
    import tokenizers
    with open(os.path.join(conf_dir, "README.md"), "w") as f:
        f.write(README.format(table="\n".join(rows), tf=TF_VERSION, torch_full=torch.__version__,
                              tok=tokenizers.__version__, st=safetensors.__version__,
                              py=platform.python_version(), n_new=N_NEW_TOKENS))
    with open(os.path.join(out_root, "make_fixtures.log"), "w") as f:
        f.write("\n".join(LOG) + "\n")
    if failures:
        for n, e in failures:
            print(f"FAILED {n}: {e}", file=sys.stderr)
        sys.exit(1)
    print("OK", flush=True)


if __name__ == "__main__":
    main()
