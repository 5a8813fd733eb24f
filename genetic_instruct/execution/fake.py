"""A scripted executor for logic tests: it runs nothing and answers by rule."""

from __future__ import annotations

from typing import Callable

from .base import FAILED, PASSED, ExecJob, ExecResult


class FakeExecutor:
    """Answers each job with ``rule(job)``; by default every job passes all its asserts."""

    name = "fake"

    def __init__(self, rule: Callable[[ExecJob], ExecResult] | None = None, **_: object):
        self.rule = rule or (lambda job: ExecResult(job.id, PASSED, len(job.tests),
                                                    len(job.tests)))
        self.jobs: list[ExecJob] = []

    def run(self, jobs: list[ExecJob]) -> list[ExecResult]:
        self.jobs.extend(jobs)
        return [self.rule(job) for job in jobs]

    def close(self) -> None:
        pass


def fail_all(job: ExecJob) -> ExecResult:
    return ExecResult(job.id, FAILED, 0, len(job.tests))
