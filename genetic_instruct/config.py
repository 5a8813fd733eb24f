"""Run configuration: pydantic models, YAML loading, ``--set`` overrides, one-line errors."""

from __future__ import annotations

import difflib
import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (BaseModel, ConfigDict, Field, ValidationError, field_validator,
                      model_validator)

ROLES = ("instructor", "coder", "test_writer", "judge")
HEURISTICS = (
    "add_constraints",
    "replace_requirement",
    "more_reasoning",
    "erroneous_code",
    "complexity",
)


class ConfigError(Exception):
    """A bad configuration; the message is one line naming the key and the fix."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SeedsConfig(_Strict):
    """Where the seed population comes from.

    ``path`` is a JSONL or Parquet file, or ``hf://ORG/NAME`` for a Hugging Face dataset
    (needs the optional ``datasets`` package; ``subset`` and ``split`` choose the part).
    ``mapping`` renames fields: ``{instruction: question}`` reads the instruction from
    the file's ``question`` field.
    """

    path: str = "seeds/python_core.jsonl"
    limit: int | None = Field(default=None, ge=1)
    difficulty: list[Literal["easy", "medium", "hard"]] | None = None
    categories: list[str] | None = None
    mapping: dict[str, str] = Field(default_factory=dict)
    split: str = "train"
    subset: str | None = None


class BackendConfig(_Strict):
    """One model server. ``type`` names a registered backend (transformers, fake, ...)."""

    type: str = "transformers"
    model: str = "embedded"
    device: str = "auto"
    dtype: str = "auto"
    batch_size: int = Field(default=32, ge=1)
    options: dict[str, Any] = Field(default_factory=dict)


class RoleConfig(_Strict):
    """Sampling for one role. ``backend`` names an entry of ``backends:``; left out, it is
    ``default`` where there is one, else the only backend, else the instructor's."""

    backend: str | None = None
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    top_p: float = Field(default=0.95, gt=0.0, le=1.0)
    max_tokens: int = Field(default=256, ge=1)
    n: int = Field(default=1, ge=1)


class EvolutionConfig(_Strict):
    colonies: int = Field(default=1, ge=1)
    offspring_per_colony: int = Field(default=32, ge=1)
    mutation_prob: float = Field(default=0.5, ge=0.0, le=1.0)
    crossover_k: int = Field(default=3, ge=1)
    heuristics: list[str] = Field(default_factory=lambda: list(HEURISTICS))
    selection: Literal["random", "tournament", "nsga2"] = "random"
    tournament_size: int = Field(default=3, ge=1)
    max_generations: int = Field(default=10, ge=1)
    target_size: int = Field(default=100, ge=1)
    # a bandit over crossover and the mutation heuristics, rewarded by acceptance
    adaptive: Literal["off", "ucb1", "thompson"] = "off"

    @field_validator("adaptive", mode="before")
    @classmethod
    def _yaml_off(cls, value: Any) -> Any:
        return "off" if value is False else value  # YAML reads a bare `off` as false

    @model_validator(mode="after")
    def _known_heuristics(self) -> EvolutionConfig:
        for h in self.heuristics:
            if h not in HEURISTICS:
                raise ValueError(f"unknown heuristic {h!r}{_did_you_mean(h, HEURISTICS)}")
        if not self.heuristics:
            raise ValueError("heuristics must not be empty")
        return self


class FunctionSpec(_Strict):
    """One fitness function of a run. A bare name in YAML means all defaults.

    ``gate``: reject a candidate the function fails (None: the function's own default);
    ``min_value``: also reject below this value; ``weight``: its share of the combined
    fitness (0 leaves it out); ``objective``: one of NSGA-II's objectives (None: when it
    is weighted and not a pure gate); ``options``: passed to the function.
    """

    name: str
    weight: float = Field(default=1.0, ge=0.0)
    gate: bool | None = None
    min_value: float | None = Field(default=None, ge=0.0, le=1.0)
    objective: bool | None = None
    options: dict[str, Any] = Field(default_factory=dict)


class FitnessConfig(_Strict):
    functions: list[FunctionSpec] = Field(
        default_factory=lambda: [FunctionSpec(name="syntax"), FunctionSpec(name="execution")])
    min_asserts: int = Field(default=3, ge=1)
    max_asserts: int = Field(default=8, ge=1)

    @field_validator("functions", mode="before")
    @classmethod
    def _names_are_specs(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"name": v} if isinstance(v, str) else v for v in value]
        return value

    @model_validator(mode="after")
    def _distinct(self) -> FitnessConfig:
        names = [f.name for f in self.functions]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"functions: {name!r} is listed twice")
        return self

    def names(self) -> list[str]:
        return [f.name for f in self.functions]

    def spec(self, name: str) -> FunctionSpec | None:
        return next((f for f in self.functions if f.name == name), None)


class ExecutionConfig(_Strict):
    executor: str = "auto"
    timeout_s: float = Field(default=10.0, gt=0)
    workers: int | None = Field(default=None, ge=1)
    memory_mb: int = Field(default=512, ge=16)


class CacheConfig(_Strict):
    """The response cache: on by default, in the run directory unless ``path`` is given
    (a path several runs share; relative paths are relative to the run directory)."""

    enabled: bool = True
    path: str | None = None


class RunConfig(_Strict):
    seed: int = 0
    seeds: SeedsConfig = Field(default_factory=SeedsConfig)
    backends: dict[str, BackendConfig] = Field(
        default_factory=lambda: {"default": BackendConfig()}
    )
    roles: dict[str, RoleConfig] = Field(default_factory=dict)
    evolution: EvolutionConfig = Field(default_factory=EvolutionConfig)
    fitness: FitnessConfig = Field(default_factory=FitnessConfig)
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)
    cache: CacheConfig = Field(default_factory=CacheConfig)

    @model_validator(mode="after")
    def _roles_name_backends(self) -> RunConfig:
        for role in self.roles:
            if role not in ROLES:
                raise ValueError(f"roles.{role}: unknown role{_did_you_mean(role, ROLES)}")
        for role in ROLES:
            rc = self.roles.setdefault(role, RoleConfig())
            if rc.backend is None:
                rc.backend = self._default_backend()
            if rc.backend not in self.backends:
                raise ValueError(
                    f"roles.{role}.backend: no backend named {rc.backend!r} under backends:"
                    f"{_did_you_mean(rc.backend, self.backends)}"
                )
        return self

    def _default_backend(self) -> str:
        if "default" in self.backends or not self.backends:
            return "default"
        if len(self.backends) == 1:
            return next(iter(self.backends))
        instructor = self.roles.get("instructor")
        if instructor is not None and instructor.backend:
            return instructor.backend
        return "default"

    def fingerprint(self) -> str:
        """A hash of everything that changes what a run produces (the cache does not)."""
        blob = json.dumps(self.model_dump(mode="json", exclude={"cache"}), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _did_you_mean(word: str, options: Any) -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _format_error(err: ValidationError, source: str) -> str:
    first = err.errors()[0]
    path = ".".join(str(p) for p in first["loc"])
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        parent_fields = _fields_at(first["loc"][:-1])
        key = str(first["loc"][-1])
        return f"{source}: unknown key {path!r}{_did_you_mean(key, parent_fields)}"
    got = first.get("input")
    shown = f" (got {got!r})" if got is not None and not isinstance(got, dict) else ""
    return f"{source}: {path or 'config'}: {msg}{shown}"


def _fields_at(loc: tuple) -> list[str]:
    model: Any = RunConfig
    for part in loc:
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        ann = field.annotation
        model = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
        if model is None:
            return []
    return list(model.model_fields)


def parse_override(item: str) -> tuple[list[str], Any]:
    """``a.b=1`` -> (["a", "b"], 1); the value is read as YAML (numbers, lists, true)."""
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected section.key=value")
    key, _, raw = item.partition("=")
    path = [p for p in key.strip().split(".") if p]
    if not path:
        raise ConfigError(f"--set {item!r}: empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return path, value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for item in overrides:
        path, value = parse_override(item)
        node = data
        for part in path[:-1]:
            nxt = node.setdefault(part, {})
            if not isinstance(nxt, dict):
                raise ConfigError(f"--set {item!r}: {part!r} is not a section")
            node = nxt
        node[path[-1]] = value
    return data


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> RunConfig:
    """Read a YAML config (or the defaults), apply overrides, validate."""
    data: dict[str, Any] = {}
    source = "config"
    if path is not None:
        p = Path(path)
        source = str(p)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p}: not valid YAML: {str(exc).splitlines()[0]}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{p}: the top level must be a mapping of sections")
    data = apply_overrides(data, overrides or [])
    return validate_config(data, source)


def validate_config(data: dict[str, Any], source: str = "config") -> RunConfig:
    try:
        return RunConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_error(err, source)) from None


def dump_config(cfg: RunConfig) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
