"""The example fitness plugin (examples/fitness_plugin): installed for real with pip into a
private target directory, then found by name through its entry point in a CLI run."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CLI, ROOT

from genetic_instruct.fitness.base import FitnessFunction
from genetic_instruct.individual import Individual

PLUGIN_SRC = ROOT / "examples" / "fitness_plugin"


# -- installing the example --------------------------------------------------------------

@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    """The plugin pip-installed into its own directory, not into the project's venv.

    pip builds in the source tree (build/, *.egg-info), so it builds from a copy and the
    example folder stays clean.
    """
    base = tmp_path_factory.mktemp("plugin")
    src = base / "src"
    shutil.copytree(PLUGIN_SRC, src,
                    ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    site = base / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
         "--no-index", "--disable-pip-version-check", "--target", str(site), str(src)],
        capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (site / "gi_docstrings.py").is_file()
    dist = next(site.glob("genetic_instruct_docstrings-*.dist-info"))
    eps = (dist / "entry_points.txt").read_text()
    assert "[genetic_instruct.fitness]" in eps
    assert "docstring = gi_docstrings:DocstringFitness" in eps
    return site


def env_with(site: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*([str(site)] if site else []), str(ROOT)])
    env["COLUMNS"] = "200"
    return env


def evolve(site: Path | None, tmp_path: Path, functions: str, overrides: list[str],
           name: str = "run") -> tuple[subprocess.CompletedProcess, Path]:
    """Write a YAML config whose fitness functions are ``functions`` (YAML flow text) and
    run ``evolve`` on it in a fresh process (cwd outside the repository)."""
    cfg = tmp_path / f"{name}.yaml"
    cfg.write_text(
        "seed: 7\n"
        f"seeds: {{path: {ROOT / 'seeds' / 'starter.jsonl'}}}\n"
        "fitness:\n"
        f"  functions: {functions}\n"
        "  min_asserts: 3\n"
    )
    out = tmp_path / name
    sets = [a for o in overrides for a in ("--set", o)]
    proc = subprocess.run([*CLI, "evolve", "--config", str(cfg), "--out", str(out), *sets],
                          capture_output=True, text=True, env=env_with(site), cwd=tmp_path,
                          timeout=300, check=False)
    return proc, out


def candidates(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "candidates.jsonl").read_text().splitlines()]


def one_line(proc: subprocess.CompletedProcess) -> str:
    return " ".join(proc.stderr.split())


@pytest.fixture
def quick(fake_overrides) -> list[str]:
    return fake_overrides + ["evolution.max_generations=2"]


# -- in a run ------------------------------------------------------------------------------

def test_plugin_scores_every_candidate_in_a_run(plugin_site, tmp_path, quick):
    functions = "[syntax, execution, {name: docstring, weight: 0.5, options: {min_words: 3}}]"
    proc, run = evolve(plugin_site, tmp_path, functions, quick)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "dataset:" in proc.stdout
    assert "Traceback" not in proc.stderr

    rows = candidates(run)
    accepted = [r for r in rows if r["status"] == "accepted"]
    assert accepted, "the fake backend's candidates pass syntax and execution"
    for row in accepted:
        rec = row["fitness"]["docstring"]
        assert rec["name"] == "docstring"
        assert 0.0 <= rec["value"] <= 1.0
        assert rec["passed"] is None  # not a gate by default
        detail = rec["detail"]
        assert detail["function"] == row["entry_point"]
        assert set(detail) >= {"docstring", "docstring_words", "params", "params_documented",
                               "params_missing", "params_hinted", "return_hinted"}
        # the fake coder writes `def scale_N(x): return x * a + b`: nothing documented
        assert detail["docstring"] is False and detail["params_missing"] == ["x"]
        assert rec["value"] == 0.0
        assert detail["reason"] == f"no docstring on {row['entry_point']}()"
        # weight 0.5: the combined value is the weighted mean over the three functions
        f = row["fitness"]
        expected = (f["syntax"]["value"] + f["execution"]["value"] + 0.5 * rec["value"]) / 2.5
        assert row["value"] == pytest.approx(expected)
    # the dataset keeps the plugin's record too
    exported = [json.loads(x) for x in (run / "dataset.jsonl").read_text().splitlines()]
    assert exported and all("docstring" in r["fitness"] for r in exported)


def test_require_docstring_gates_with_the_plugins_name(plugin_site, tmp_path, quick):
    functions = ("[syntax, execution, {name: docstring, weight: 0.5, "
                 "options: {require_docstring: true, min_words: 3}}]")
    proc, run = evolve(plugin_site, tmp_path, functions, quick)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = candidates(run)
    gated = [r for r in rows if "docstring" in r["fitness"]]
    assert gated, "candidates reached the docstring gate"
    for row in gated:
        assert row["status"] == "rejected"
        assert row["fitness"]["docstring"]["passed"] is False
        assert row["reason"] == f"docstring: no docstring on {row['entry_point']}()"
    assert not [r for r in rows if r["status"] == "accepted"]
    assert "docstring: no docstring on" in proc.stderr  # the per-generation summary


def test_unknown_option_is_one_line_naming_it(plugin_site, tmp_path, quick):
    proc, _ = evolve(plugin_site, tmp_path,
                     "[syntax, {name: docstring, options: {min_wrods: 3}}]", quick)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    msg = one_line(proc)
    assert "fitness.functions.docstring.options.min_wrods: not an option of 'docstring'" in msg
    assert "(did you mean 'min_words'?)" in msg
    assert "its options: min_words, require_docstring" in msg


def test_bad_option_value_is_a_config_error(plugin_site, tmp_path, quick):
    proc, _ = evolve(plugin_site, tmp_path,
                     "[syntax, {name: docstring, options: {min_words: 0}}]", quick)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "fitness.functions.docstring: min_words must be a whole number of at least 1 " \
           "(got 0)" in one_line(proc)


def test_misspelled_name_suggests_the_plugin(plugin_site, tmp_path, quick):
    proc, _ = evolve(plugin_site, tmp_path, "[syntax, docstrng]", quick)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    msg = one_line(proc)
    assert "unknown fitness function 'docstrng' (did you mean 'docstring'?)" in msg
    assert "docstring" in msg.split("known:")[1]


def test_the_name_comes_from_the_installed_entry_point(tmp_path, quick):
    """Control: without the plugin on the path, `docstring` is not a known name."""
    proc, _ = evolve(None, tmp_path, "[syntax, docstring]", quick)
    assert proc.returncode == 2
    msg = one_line(proc)
    assert "unknown fitness function 'docstring'" in msg
    assert "docstring" not in msg.split("known:")[1]


# -- DocstringFitness itself ---------------------------------------------------------------

@pytest.fixture(scope="module")
def plugin():
    """The example's module, loaded from its source file (no install needed)."""
    spec = importlib.util.spec_from_file_location("gi_docstrings_src",
                                                  PLUGIN_SRC / "gi_docstrings.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ind(solution: str, entry_point: str = "area") -> Individual:
    return Individual(id="x", instruction="", entry_point=entry_point, solution=solution)


DOCUMENTED = '''
def area(width: float, height: float) -> float:
    """Return the area of a rectangle of the given width and height."""
    return width * height
'''
BARE = "def area(width, height):\n    return width * height\n"
HINTS_ONLY = "def area(width: float, height: float) -> float:\n    return width * height\n"
PARTIAL = '''
def area(width: float, height) -> float:
    """Area from width."""
    return width * height
'''


@pytest.mark.parametrize("solution,value", [
    (DOCUMENTED, 1.0),
    (BARE, 0.0),
    (HINTS_ONLY, 0.25),
    # 3 words of 5: 0.5 * 3/5; one parameter of two named: 0.25 / 2; 2 of 3 hints
    (PARTIAL, 0.5 * 3 / 5 + 0.25 / 2 + 0.25 * 2 / 3),
])
def test_values(plugin, solution, value):
    rec = plugin.DocstringFitness(min_words=5).score([ind(solution)])[0]
    assert rec.name == "docstring"
    assert rec.value == pytest.approx(value, abs=1e-4)
    assert rec.passed is None


def test_detail_says_what_was_found(plugin):
    rec = plugin.DocstringFitness(min_words=5).score_one(ind(PARTIAL))
    d = rec.detail
    assert d["function"] == "area" and d["docstring"] is True and d["docstring_words"] == 3
    assert d["params"] == ["width", "height"]
    assert d["params_documented"] == ["width"] and d["params_missing"] == ["height"]
    assert d["params_hinted"] == ["width"] and d["return_hinted"] is True
    assert d["reason"] == "the docstring of area() has 3 words, need at least 5"
    assert "reason" not in plugin.DocstringFitness().score_one(ind(DOCUMENTED)).detail
    json.dumps(d)  # goes into candidates.jsonl as it is


def test_parameters_of_every_kind_and_async(plugin):
    code = '''
async def area(a, /, b: int, *rest, c, **extra) -> None:
    """Uses a, b and c; rest and extra are ignored. Not a_b nor bc."""
'''
    d = plugin.DocstringFitness().score_one(ind(code)).detail
    assert d["params"] == ["a", "b", "c", "rest", "extra"]
    assert d["params_missing"] == []
    assert d["params_hinted"] == ["b"]
    code2 = 'def area(ab, b):\n    """Uses ab only."""\n'
    assert plugin.DocstringFitness().score_one(ind(code2)).detail["params_missing"] == ["b"]


def test_gate_and_reasons(plugin):
    fn = plugin.DocstringFitness(require_docstring=True, min_words=3)
    assert fn.gate is True
    recs = fn.score([ind(DOCUMENTED), ind(BARE), ind(PARTIAL), ind("def area(:\n"),
                     ind(DOCUMENTED, entry_point="perimeter")])
    assert [r.passed for r in recs] == [True, False, True, False, False]
    assert recs[1].detail["reason"] == "no docstring on area()"
    assert recs[3].detail["reason"].startswith("the solution does not parse")
    assert recs[3].value == 0.0
    assert recs[4].detail["reason"] == "the solution does not define perimeter() at top level"
    # the spec's `gate: true` (set on the instance by genetic-instruct) gates it as well
    plain = plugin.DocstringFitness(min_words=3)
    plain.gate = True
    assert plain.score_one(ind(BARE)).passed is False


def test_never_runs_the_code(plugin, tmp_path):
    marker = tmp_path / "ran"
    code = (f"open({str(marker)!r}, 'w').write('x')\nraise SystemExit(3)\n"
            'def area(width, height):\n    """Width times height."""\n')
    rec = plugin.DocstringFitness().score_one(ind(code))
    assert rec.detail["docstring"] is True
    assert not marker.exists()


def test_an_empty_entry_point_uses_the_first_function(plugin):
    rec = plugin.DocstringFitness().score_one(ind(DOCUMENTED, entry_point=""))
    assert rec.detail["function"] == "area" and rec.value == 1.0


@pytest.mark.parametrize("kwargs", [{"min_words": 0}, {"min_words": "3"}, {"min_words": True},
                                    {"require_docstring": "yes"}])
def test_bad_options(plugin, kwargs):
    with pytest.raises((TypeError, ValueError)):  # genetic-instruct reports either
        plugin.DocstringFitness(**kwargs)


def test_meets_the_protocol(plugin):
    fn = plugin.DocstringFitness()
    assert isinstance(fn, FitnessFunction)
    assert fn.name == "docstring" and fn.gate is False
