"""Record the parts of vLLM's Python API our backend uses, read from a wheel without installing it.

    python scripts/vllm_api_snapshot.py vllm-0.33.0-...whl > tests/data/vllm_api.json

The wheel's sources are parsed with ``ast`` (nothing is imported). The JSON lists parameter
names and kinds of ``LLM.__init__``, ``LLM.generate``, ``LLM.chat``, ``LLM.get_tokenizer``,
the fields of ``EngineArgs`` (where ``LLM(**kwargs)`` ends up) and ``SamplingParams``, and
the attributes of ``RequestOutput`` and ``CompletionOutput``. The fake ``vllm`` module in
tests/fake_vllm checks every argument our backend passes against it.
"""

from __future__ import annotations

import ast
import json
import re
import sys
import zipfile
from pathlib import PurePosixPath

LLM_FILE = "vllm/entrypoints/llm.py"
SAMPLING_FILE = "vllm/sampling_params.py"
OUTPUTS_FILE = "vllm/outputs.py"
ENGINE_ARGS_FILE = "vllm/engine/arg_utils.py"
LLM_METHODS = ("__init__", "generate", "chat", "get_tokenizer")


def find_class(tree: ast.Module, name: str) -> ast.ClassDef:
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return node
    raise SystemExit(f"class {name} not found")


def find_method(cls: ast.ClassDef, name: str) -> ast.FunctionDef:
    for node in cls.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return node
    raise SystemExit(f"{cls.name}.{name} not found")


def literal(node: ast.expr | None):
    """A default that is a plain constant (number, string, bool, None); else a marker."""
    if node is None:
        return None
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str, bool,
                                                                  type(None))):
        return {"value": node.value}
    return {"value": None, "expression": True}


def parameters(fn: ast.FunctionDef) -> list[dict]:
    """Each parameter (``self`` left out) with its kind, as ``inspect`` names kinds."""
    a = fn.args
    out: list[dict] = []
    positional = [(p, "positional_only") for p in a.posonlyargs]
    positional += [(p, "positional_or_keyword") for p in a.args]
    defaults = [None] * (len(positional) - len(a.defaults)) + list(a.defaults)
    for (p, kind), default in zip(positional, defaults):
        out.append(_param(p.arg, kind, default))
    if a.vararg:
        out.append({"name": a.vararg.arg, "kind": "var_positional", "required": False})
    for p, default in zip(a.kwonlyargs, a.kw_defaults):
        out.append(_param(p.arg, "keyword_only", default))
    if a.kwarg:
        out.append({"name": a.kwarg.arg, "kind": "var_keyword", "required": False})
    return [p for p in out if p["name"] not in ("self", "cls")]


def _param(name: str, kind: str, default: ast.expr | None) -> dict:
    entry = {"name": name, "kind": kind, "required": default is None}
    if default is not None:
        entry["default"] = literal(default)
    return entry


def is_classvar(annotation: ast.expr) -> bool:
    text = ast.unparse(annotation)
    return text.startswith(("ClassVar", "typing.ClassVar"))


def class_fields(cls: ast.ClassDef) -> list[dict]:
    """Annotated class attributes in order: the fields of a dataclass or msgspec Struct."""
    out = []
    for node in cls.body:
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                and not is_classvar(node.annotation)):
            entry = {"name": node.target.id, "required": node.value is None}
            if node.value is not None:
                entry["default"] = literal(node.value)
            out.append(entry)
    return out


def class_keywords(cls: ast.ClassDef) -> dict:
    """Keywords of the class statement (``kw_only=True`` and the like), constants only."""
    return {k.arg: k.value.value for k in cls.keywords
            if k.arg and isinstance(k.value, ast.Constant)}


def self_attributes(fn: ast.FunctionDef) -> list[str]:
    """Names assigned as ``self.X = ...`` in a method, in order."""
    names: list[str] = []
    for node in ast.walk(fn):
        targets = node.targets if isinstance(node, ast.Assign) else (
            [node.target] if isinstance(node, ast.AnnAssign) else [])
        for t in targets:
            if (isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name)
                    and t.value.id == "self" and t.attr not in names):
                names.append(t.attr)
    return names


def version_of(wheel: zipfile.ZipFile) -> str:
    for name in wheel.namelist():
        parts = PurePosixPath(name).parts
        if len(parts) == 2 and parts[0].endswith(".dist-info") and parts[1] == "METADATA":
            m = re.search(r"^Version: (\S+)$", wheel.read(name).decode(), re.M)
            if m:
                return m.group(1)
    raise SystemExit("no Version in the wheel's METADATA")


def snapshot(path: str) -> dict:
    with zipfile.ZipFile(path) as wheel:
        trees = {f: ast.parse(wheel.read(f).decode(), filename=f)
                 for f in (LLM_FILE, SAMPLING_FILE, OUTPUTS_FILE, ENGINE_ARGS_FILE)}
        version = version_of(wheel)
    llm = find_class(trees[LLM_FILE], "LLM")
    sampling = find_class(trees[SAMPLING_FILE], "SamplingParams")
    request_output = find_class(trees[OUTPUTS_FILE], "RequestOutput")
    completion_output = find_class(trees[OUTPUTS_FILE], "CompletionOutput")
    engine_args = find_class(trees[ENGINE_ARGS_FILE], "EngineArgs")
    return {
        "vllm_version": version,
        "wheel": PurePosixPath(path).name,
        "LLM": {m: parameters(find_method(llm, m)) for m in LLM_METHODS},
        "EngineArgs": {"fields": class_fields(engine_args)},
        "SamplingParams": {
            "bases": [ast.unparse(b) for b in sampling.bases],
            "keywords": class_keywords(sampling),
            "fields": class_fields(sampling),
        },
        "RequestOutput": {
            "init": parameters(find_method(request_output, "__init__")),
            "attributes": self_attributes(find_method(request_output, "__init__")),
        },
        "CompletionOutput": {"fields": class_fields(completion_output)},
    }


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: vllm_api_snapshot.py WHEEL > tests/data/vllm_api.json", file=sys.stderr)
        return 2
    json.dump(snapshot(argv[0]), sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
