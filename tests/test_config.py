from __future__ import annotations

import pytest

from genetic_instruct.config import ConfigError, load_config, validate_config
from genetic_instruct.registry import UnknownName, backends


def test_defaults_are_valid():
    cfg = validate_config({})
    assert set(cfg.roles) == {"instructor", "coder", "test_writer", "judge"}
    assert cfg.evolution.mutation_prob == 0.5
    assert cfg.evolution.crossover_k == 3


def test_quickstart_loads(root):
    cfg = load_config(root / "configs/quickstart.yaml")
    assert cfg.backends["default"].model == "embedded"


def test_unknown_key_names_path_and_suggests():
    with pytest.raises(ConfigError, match=r"unknown key 'evolution.mutation_prb'.*mutation_prob"):
        validate_config({"evolution": {"mutation_prb": 0.3}})


def test_wrong_type_names_key_path():
    with pytest.raises(ConfigError, match=r"evolution.colonies"):
        validate_config({"evolution": {"colonies": "many"}})


def test_role_must_name_a_backend():
    with pytest.raises(ConfigError, match=r"roles.coder.backend.*'defualt'.*did you mean 'default'"):
        validate_config({"roles": {"coder": {"backend": "defualt"}}})


def test_unknown_heuristic():
    with pytest.raises(ConfigError, match="unknown heuristic 'add_constraint'"):
        validate_config({"evolution": {"heuristics": ["add_constraint"]}})


def test_overrides_are_typed(tmp_path):
    cfg = load_config(None, ["evolution.colonies=3", "roles.coder.temperature=0.1",
                             "seeds.difficulty=[easy, medium]"])
    assert cfg.evolution.colonies == 3
    assert cfg.roles["coder"].temperature == 0.1
    assert cfg.seeds.difficulty == ["easy", "medium"]


def test_bad_override_syntax():
    with pytest.raises(ConfigError, match="expected section.key=value"):
        load_config(None, ["evolution.colonies"])


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_fingerprint_changes_with_config():
    a = validate_config({})
    b = validate_config({"seed": 1})
    assert a.fingerprint() != b.fingerprint()
    assert a.fingerprint() == validate_config({}).fingerprint()


def test_unknown_backend_suggests():
    with pytest.raises(UnknownName, match="did you mean 'transformers'"):
        backends.get("transformer")
