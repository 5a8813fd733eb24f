"""Publish a run on the Hugging Face Hub: parquet shards, a dataset card, the run config.

The files are first laid out in a folder, exactly as they will sit in the dataset repo::

    README.md                               the dataset card (YAML header + description)
    config.yaml                             the run config that produced the data
    decontam.json                           the decontamination report (when the gate ran)
    data/train-00000-of-00001.parquet
    data/validation-00000-of-00001.parquet  (left out when the split is empty)

and that folder is uploaded in one commit with ``HfApi.upload_folder``. ``--dry-run DIR``
writes the same folder and stops, so what it shows is what would be uploaded. (Not
``datasets.push_to_hub``: it writes its own card and layout, which a dry run could not
reproduce offline.) The token is the usual one: ``HF_TOKEN`` or ``hf auth login``.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import yaml

from .export import (HUB_EXTRA, SPLITS, VALIDATION, ExportError, check_options,
                     decontaminate_rows, load_benchmarks, make_rows, split_counts,
                     write_report, write_rows)
from .individual import ACCEPTED
from .store import RunStore

LAYOUT = ("README.md", "config.yaml", "decontam.json", "data")
LOGIN = "no Hugging Face token: run `hf auth login` or set HF_TOKEN (or use --dry-run DIR)"
REPO_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


class HubError(Exception):
    """Publishing failed; one line saying why."""


@dataclass
class Bundle:
    folder: Path
    files: list[str]
    splits: dict[str, int]
    removed: int = 0
    stats: dict[str, Any] = field(default_factory=dict)


def shard(split: str) -> str:
    return f"data/{split}-00000-of-00001.parquet"


def hf_token() -> str | None:
    try:
        from huggingface_hub import get_token
    except ImportError:
        raise HubError(f"push needs the `huggingface_hub` package: {HUB_EXTRA}") from None
    return get_token()


# -- the folder --------------------------------------------------------------------------------
def build(run: str | Path, folder: str | Path, repo_id: str, kind: str = "sft",
          validation: float = VALIDATION, pairs_per_prompt: int = 1, decontam: bool = True,
          benchmarks: Sequence[str] = (), license: str = "apache-2.0") -> Bundle:
    """Write the repo's files into ``folder`` (empty, or an earlier bundle: replaced)."""
    check_options(kind, "parquet", validation, pairs_per_prompt)
    check_repo_id(repo_id)
    store = RunStore(run)
    rows = make_rows(store, kind, validation, pairs_per_prompt)
    folder = _clear(Path(folder))
    removed, against = 0, None
    if decontam:
        benches = load_benchmarks(benchmarks)
        against = [b.name for b in benches]
        before = len(rows)
        rows, report = decontaminate_rows(rows, benches=benches)
        removed = before - len(rows)
        write_report(report, folder / "decontam.json")
    splits = split_counts(rows)
    for split in SPLITS:
        if splits[split]:
            write_rows([r for r in rows if r["split"] == split], folder / shard(split),
                       "parquet")
    (folder / "config.yaml").write_text(store.config_text())
    stats = run_stats(store)
    (folder / "README.md").write_text(card(repo_id, kind, license, splits, removed, against,
                                           yaml.safe_load(store.config_text()) or {}, stats))
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    return Bundle(folder, files, splits, removed, stats)


def check_repo_id(repo_id: str) -> None:
    if not REPO_ID.match(repo_id):
        raise HubError(f"--repo-id must be ORG/NAME (got {repo_id!r})")


def _clear(folder: Path) -> Path:
    if folder.exists():
        if not folder.is_dir():
            raise HubError(f"{folder} is not a folder")
        other = [p.name for p in folder.iterdir() if p.name not in LAYOUT]
        if other:
            raise HubError(f"{folder} holds other files ({other[0]}, ...): choose an empty "
                           "folder")
        for name in LAYOUT:
            path = folder / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# -- statistics for the card -------------------------------------------------------------------
def run_stats(store: RunStore) -> dict[str, Any]:
    state = store.latest_checkpoint() or {}
    logbook = state.get("logbook", [])
    ops: dict[str, Counter] = defaultdict(Counter)
    reasons: Counter = Counter()
    for row in logbook:
        for op, counts in row.get("operators", {}).items():
            ops[op]["proposed"] += counts.get("proposed", 0)
            ops[op]["accepted"] += counts.get("accepted", 0)
        reasons.update(row.get("reasons", {}))
    fitness: dict[str, dict[str, float]] = {}
    candidates = accepted = 0
    for c in store.iter_candidates():
        candidates += 1
        accepted += c.status == ACCEPTED
        for name, rec in c.fitness.items():
            f = fitness.setdefault(name, {"scored": 0, "sum": 0.0, "accepted": 0,
                                          "accepted_sum": 0.0})
            f["scored"] += 1
            f["sum"] += rec.value
            if c.status == ACCEPTED:
                f["accepted"] += 1
                f["accepted_sum"] += rec.value
    return {
        "generations": len(logbook),
        "candidates": candidates,
        "accepted": accepted,
        "operators": {op: dict(c) for op, c in sorted(ops.items())},
        "reasons": dict(reasons.most_common()),
        "fitness": fitness,
        "tokens": state.get("tokens", {}),
    }


# -- the card ----------------------------------------------------------------------------------
def size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                        (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")):
        if n < limit:
            return name
    return "10M<n<100M"


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(head: Sequence[str], rows: list[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def card(repo_id: str, kind: str, license: str, splits: dict[str, int], removed: int,
         against: list[str] | None, cfg: dict[str, Any], stats: dict[str, Any]) -> str:
    """The dataset card; ``against``: the benchmarks the gate checked (None: not run)."""
    total = sum(splits.values())
    header = {
        "license": license,
        "language": ["en"],
        "pretty_name": repo_id.split("/")[-1],
        "task_categories": ["text-generation"],
        "tags": ["code", "synthetic", "genetic-instruct", "python",
                 "sft" if kind == "sft" else "dpo"],
        "size_categories": [size_category(total)],
        "configs": [{"config_name": "default", "default": True, "data_files": [
            {"split": s, "path": f"data/{s}-*.parquet"} for s in SPLITS if splits[s]]}],
    }
    what = ("coding instructions, each with a Python solution that passes its own assert "
            "tests (supervised fine-tuning)" if kind == "sft" else
            "preference pairs: for each coding instruction, a solution that passes its "
            "tests (`chosen`) against an independently sampled one that passes fewer "
            "(`rejected`), with execution rewards (DPO, reward-aware preference "
            "optimization)")
    parts = [
        "---\n" + yaml.safe_dump(header, sort_keys=False) + "---\n",
        f"# {repo_id.split('/')[-1]}\n",
        f"Synthetic {what}, grown by evolving instructions with LLMs "
        "(genetic-instruct). Every solution in it was run against "
        "its tests in a sandbox during the run.\n",
        "## Contents\n",
        _table(["split", "rows"], [[s, splits[s]] for s in SPLITS]) + "\n",
        _fields(kind) + "\n",
        "## How it was made\n",
        _models(cfg) + "\n",
        _run_facts(cfg, stats) + "\n",
        "### Operators\n",
        _table(["operator", "proposed", "accepted", "acceptance"],
               [[op, c.get("proposed", 0), c.get("accepted", 0),
                 f"{c.get('accepted', 0) / c['proposed']:.1%}" if c.get("proposed") else "-"]
                for op, c in stats["operators"].items()]) + "\n",
        "### Rejection reasons\n",
        (_table(["reason", "count"], [[r, n] for r, n in stats["reasons"].items()])
         if stats["reasons"] else "None recorded.") + "\n",
        "### Fitness functions\n",
        _fitness(cfg, stats) + "\n",
        "## Decontamination\n",
        _decontam(removed, against) + "\n",
        "## How to load\n",
        _loading(repo_id, kind, splits) + "\n",
        "## Licence\n",
        f"Released under `{license}`. The samples were generated by the models listed "
        "above: their licences and terms of use apply to this data as well; check them "
        "before you train on it or redistribute it.\n",
    ]
    return "\n".join(parts)


def _fields(kind: str) -> str:
    if kind == "sft":
        return ("Fields: `messages` (user instruction, assistant answer: the chat format "
                "TRL's SFTTrainer and NeMo-Aligner read), `instruction`, `solution`, "
                "`tests` (assert statements), `entry_point`, `fitness` and "
                "`fitness_detail` (JSON strings: per fitness function), `score` (combined "
                "fitness), `lineage` (JSON string: parents, operator, heuristic, "
                "generation), `split`.")
    return ("Fields: `prompt` (the user message), `chosen` and `rejected` (one assistant "
            "message each: TRL's DPOTrainer conversational format), `chosen_reward` and "
            "`rejected_reward` (fraction of the tests passed), `reward_gap`, "
            "`rejected_status`, `instruction`, `tests`, `entry_point`, `source_id`, "
            "`lineage` (JSON string), `split`.")


def _models(cfg: dict[str, Any]) -> str:
    backends = cfg.get("backends", {})
    rows = []
    for role, rc in (cfg.get("roles") or {}).items():
        b = backends.get(rc.get("backend"), {})
        rows.append([role, b.get("model", "?"), b.get("type", "?"), rc.get("temperature", "")])
    return _table(["role", "model", "backend", "temperature"], rows) if rows else ""


def _run_facts(cfg: dict[str, Any], stats: dict[str, Any]) -> str:
    seeds = cfg.get("seeds", {})
    evo = cfg.get("evolution", {})
    limit = f" (first {seeds['limit']})" if seeds.get("limit") else ""
    lines = [
        f"- seeds: `{seeds.get('path', '?')}`{limit}",
        f"- generations: {stats['generations']} (of at most {evo.get('max_generations', '?')}"
        f"), {evo.get('colonies', '?')} colonies of {evo.get('offspring_per_colony', '?')} "
        "offspring each",
        f"- candidates: {stats['candidates']} proposed, {stats['accepted']} accepted",
        f"- run seed: {cfg.get('seed', '?')}; the full config is `config.yaml` in this repo",
    ]
    tokens = stats.get("tokens") or {}
    if tokens:
        spent = ", ".join(f"{role} {t.get('in', 0)} in / {t.get('out', 0)} out"
                          for role, t in sorted(tokens.items()))
        lines.append(f"- tokens per role: {spent}")
    return "\n".join(lines)


def _fitness(cfg: dict[str, Any], stats: dict[str, Any]) -> str:
    specs = {}
    for f in (cfg.get("fitness") or {}).get("functions", []):
        f = {"name": f} if isinstance(f, str) else f
        specs[f["name"]] = f
    rows = []
    for name in dict.fromkeys([*specs, *stats["fitness"]]):
        s = stats["fitness"].get(name, {})
        mean = f"{s['sum'] / s['scored']:.3f}" if s.get("scored") else "-"
        acc = f"{s['accepted_sum'] / s['accepted']:.3f}" if s.get("accepted") else "-"
        rows.append([name, specs.get(name, {}).get("weight", "-"), s.get("scored", 0), mean,
                     acc])
    return _table(["function", "weight", "scored", "mean (all candidates)",
                   "mean (accepted)"], rows)


def _decontam(removed: int, against: list[str] | None) -> str:
    if against is None:
        return "Not run for this upload."
    if not against:
        return "No benchmark was found to check against: treat this data as unchecked."
    return (f"Rows that overlap a benchmark problem ({', '.join(against)}) were removed "
            f"before upload: {removed}. Details in `decontam.json`.")


def _loading(repo_id: str, kind: str, splits: dict[str, int]) -> str:
    names = ", ".join(s for s in SPLITS if splits[s])
    code = ["```python", "from datasets import load_dataset", "",
            f'ds = load_dataset("{repo_id}")  # splits: {names}']
    if kind == "preference":
        code += ["# trl.DPOTrainer(..., train_dataset=ds[\"train\"]) reads prompt/chosen/"
                 "rejected as they are"]
    else:
        code += ["# trl.SFTTrainer(..., train_dataset=ds[\"train\"]) reads `messages`"]
    code += ["import json", 'lineage = json.loads(ds["train"][0]["lineage"])', "```"]
    return "\n".join(code)


# -- upload ------------------------------------------------------------------------------------
def upload(folder: Path, repo_id: str, token: str, private: bool = False) -> str:
    """One commit with the folder's files; stale shards under data/ are deleted."""
    import httpx
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        info = api.upload_folder(repo_id=repo_id, repo_type="dataset", folder_path=folder,
                                 commit_message="Upload dataset from genetic-instruct",
                                 delete_patterns=["data/*.parquet"])
    except (HfHubHTTPError, httpx.HTTPError, OSError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise HubError(f"upload to {repo_id} failed: {first}") from None
    return str(getattr(info, "commit_url", f"https://huggingface.co/datasets/{repo_id}"))


def push(run: str | Path, repo_id: str, private: bool = False, dry_run: str | Path | None = None,
         **options: Any) -> tuple[Bundle, str | None]:
    """Build the bundle and upload it (or, with ``dry_run``, only write it there)."""
    check_repo_id(repo_id)
    if dry_run is not None:
        return build(run, dry_run, repo_id, **options), None
    token = hf_token()
    if not token:
        raise HubError(LOGIN)
    with tempfile.TemporaryDirectory(prefix="gi-push-") as tmp:
        bundle = build(run, Path(tmp) / "repo", repo_id, **options)
        return bundle, upload(bundle.folder, repo_id, token, private)


__all__ = ["Bundle", "ExportError", "HubError", "build", "card", "push", "upload"]
