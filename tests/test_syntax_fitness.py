from __future__ import annotations

import pytest

from genetic_instruct.fitness.syntax import SyntaxFitness
from genetic_instruct.individual import Individual

SOLUTION = "def add(a, b):\n    return a + b\n"
GOOD = ["assert add(1, 2) == 3", "assert add(0, 0) == 0", "assert add(-1, 1) == 0"]


def score(tests, solution=SOLUTION, min_asserts=3):
    ind = Individual(id="x", instruction="add", entry_point="add", solution=solution, tests=tests)
    return SyntaxFitness(min_asserts=min_asserts).score([ind])[0]


def test_good_candidate_passes():
    rec = score(GOOD)
    assert rec.passed and rec.value == 1.0


@pytest.mark.parametrize("bad,reason", [
    (["def add(a, b): return 0"], "not a single assert"),
    (["assert (add := lambda a, b: 0)(1, 2) == 0"], "defines or assigns"),
    (["assert [add for add in [1]] == [1]"], "does not call add"),
    (["assert sub(1, 2) == -1"], "does not call add"),
    (["assert add(1, 2) == add(1, 2)"], "compares an expression with itself"),
    (["assert add(1,"], "does not parse"),
])
def test_bad_tests_are_rejected(bad, reason):
    rec = score(GOOD[:2] + bad)
    assert rec.passed is False
    assert reason in rec.detail["reason"]


def test_too_few_distinct_asserts():
    rec = score([GOOD[0], GOOD[0], GOOD[1]])
    assert rec.passed is False and "2 distinct asserts" in rec.detail["reason"]


def test_solution_must_parse_and_define_entry_point():
    assert "does not parse" in score(GOOD, solution="def add(a, b:\n").detail["reason"]
    assert "does not define add" in score(GOOD, solution="def plus(a, b):\n    return 1\n"
                                          ).detail["reason"]
