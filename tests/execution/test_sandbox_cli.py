"""`genetic-instruct sandbox ...` (mounted from genetic_instruct.sandbox_cli)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from genetic_instruct.sandbox_cli import app
from sandbox_helpers import EXECUTOR_PARAMS, IN_CI, open_executor

MBPP = Path(__file__).resolve().parents[3] / "shared" / "benchmarks" / "mbpp.jsonl"
# Reference solutions that fail their own tests on current Python (shared/benchmarks/README.md).
MBPP_KNOWN_BAD = {341, 596, 642}
cli = CliRunner()


def invoke(*args: str):
    result = cli.invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result


@pytest.fixture(params=EXECUTOR_PARAMS)
def executor_name(request) -> str:
    open_executor(request.param)  # skips (or fails under CI) when this sandbox is missing
    return request.param


def test_exec_prints_one_json_result(tmp_path, executor_name):
    (tmp_path / "sol.py").write_text("def add(a, b):\n    return a + b\n")
    (tmp_path / "tests.py").write_text(
        "import math\nassert add(1, 2) == 3\nassert add(\n    2, 2) == 4\n"
        "assert math.isclose(add(0.1, 0.2), 0.3)\nassert add(0, 0) == 1\n")
    result = invoke("exec", "--solution", str(tmp_path / "sol.py"), "--tests",
                    str(tmp_path / "tests.py"), "--executor", executor_name, "--timeout", "5",
                    "--json")
    assert result.exit_code == 0, result.output
    line = [ln for ln in result.output.splitlines() if ln.startswith("{")]
    row = json.loads(line[-1])
    assert (row["status"], row["tests_passed"], row["tests_total"]) == ("failed", 3, 4)


def test_exec_reads_a_json_list_of_asserts(tmp_path):
    (tmp_path / "sol.py").write_text("def add(a, b):\n    return a + b\n")
    (tmp_path / "tests.json").write_text(json.dumps(["assert add(1, 2) == 3"]))
    result = invoke("exec", "--solution", str(tmp_path / "sol.py"), "--tests",
                    str(tmp_path / "tests.json"), "--executor", "local")
    assert result.exit_code == 0 and "passed: 1/1" in result.output


def test_unknown_executor_is_one_line(tmp_path):
    (tmp_path / "sol.py").write_text("x = 1\n")
    result = invoke("exec", "--solution", str(tmp_path / "sol.py"), "--tests",
                    str(tmp_path / "sol.py"), "--executor", "dokcer")
    assert result.exit_code == 2
    assert "did you mean 'docker'" in result.output


def test_exec_batch_writes_one_row_per_input_row(tmp_path):
    rows = [{"id": "ok", "solution": "def f():\n    return 1\n", "tests": ["assert f() == 1"]},
            {"id": "bad", "solution": "def f():\n    return 2\n", "tests": ["assert f() == 1"]},
            {"id": "setup", "setup": "K = 3\n", "solution": "def f():\n    return K\n",
             "tests": ["assert f() == 3"]},
            {"id": "no-tests-field", "solution": "x = 1\n"}]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(json.dumps(r) for r in rows) + "\nnot json\n")
    result = invoke("exec-batch", "--input", str(source), "--output", str(tmp_path / "out.jsonl"),
                    "--executor", "local", "--timeout", "5")
    assert result.exit_code == 0, result.output
    out = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["status"] for r in out] == ["passed", "failed", "passed", "error", "error"]
    assert {"id", "status", "tests_passed", "tests_total", "duration_s", "stdout_tail",
            "stderr_tail"} <= set(out[0])


def _mbpp_rows(broken: bool) -> list[dict]:
    rows = []
    for line in MBPP.read_text().splitlines():
        task = json.loads(line)
        # MBPP's test_setup_code builds fixtures from the solution's classes: it runs after it.
        code = f"{task['code']}\n{task['test_setup_code']}".replace("\r\n", "\n")
        if broken:  # every top-level function now raises
            code += "".join(f"\ndef {name}(*args, **kwargs):\n    raise RuntimeError('broken')\n"
                            for name in re.findall(r"^def\s+(\w+)\s*\(", task["code"], re.M))
        rows.append({"id": task["task_id"], "solution": code, "tests": task["test_list"]})
    return rows


@pytest.mark.skipif(not MBPP.exists(),
                    reason=f"{MBPP} is not here (shared/ is beside the repo in CI)")
def test_exec_batch_on_mbpp_reference_and_broken_solutions(tmp_path):
    from genetic_instruct.execution import ExecutorUnavailable, make_executor
    try:
        make_executor("auto", workers=1, warm=False).close()
    except ExecutorUnavailable as exc:
        if IN_CI:
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    for broken in (False, True):
        source, target = tmp_path / f"in-{broken}.jsonl", tmp_path / f"out-{broken}.jsonl"
        source.write_text("".join(json.dumps(row) + "\n" for row in _mbpp_rows(broken)))
        result = invoke("exec-batch", "--input", str(source), "--output", str(target),
                        "--timeout", "20")
        assert result.exit_code == 0, result.output
        out = [json.loads(line) for line in target.read_text().splitlines()]
        assert len(out) == 974
        passed = {row["id"] for row in out if row["status"] == "passed"}
        if broken:
            assert passed == set()
        else:
            assert {row["id"] for row in out} - passed == MBPP_KNOWN_BAD


def test_doctor_names_what_auto_picks():
    result = invoke("doctor")
    assert "auto picks" in result.output
    assert result.exit_code in (0, 1)
