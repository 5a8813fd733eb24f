"""``execution``: the tests run against the solution through an Executor (sandboxed)."""

from __future__ import annotations

from ..execution.base import ExecJob, Executor
from ..individual import FitnessRecord, Individual


class ExecutionFitness:
    """Gate: passes when every assert was executed and passed; value = passed / total."""

    name = "execution"
    gate = True

    def __init__(self, executor: Executor, timeout_s: float = 10.0, **_: object):
        self.executor = executor
        self.timeout_s = timeout_s

    def score(self, individuals: list[Individual]) -> list[FitnessRecord]:
        jobs = [ExecJob(id=ind.id, solution=ind.solution, tests=list(ind.tests),
                        timeout_s=self.timeout_s) for ind in individuals]
        results = self.executor.run(jobs) if jobs else []
        records = []
        for res in results:
            total = res.tests_total or 0
            value = res.tests_passed / total if total else 0.0
            detail = {"status": res.status, "tests_passed": res.tests_passed,
                      "tests_total": total, "duration_s": round(res.duration_s, 4)}
            if not res.passed:
                detail["reason"] = f"{res.status} ({res.tests_passed}/{total} asserts passed)"
                detail["stderr_tail"] = res.stderr_tail[-300:]
            records.append(FitnessRecord(self.name, value, passed=res.passed, detail=detail))
        return records
