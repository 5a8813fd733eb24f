"""The Executor protocol: run untrusted solutions against their asserts, batch in, batch out."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Protocol, runtime_checkable

PASSED = "passed"
FAILED = "failed"
ERROR = "error"
TIMEOUT = "timeout"
MEMORY = "memory"
OUTPUT_LIMIT = "output_limit"
CRASHED = "crashed"
STATUSES = (PASSED, FAILED, ERROR, TIMEOUT, MEMORY, OUTPUT_LIMIT, CRASHED)


@dataclass
class ExecJob:
    """One solution plus its assert statements.

    ``setup`` runs before the solution (imports, fixtures). Each assert in ``tests`` is
    executed separately after the solution.
    """

    id: str
    solution: str
    tests: list[str]
    setup: str = ""
    timeout_s: float = 10.0


@dataclass
class ExecResult:
    """What became of one job.

    ``status`` is one of STATUSES. ``passed`` only when the solution ran and every
    assert was executed and passed (``tests_passed == tests_total > 0``).
    """

    id: str
    status: str
    tests_passed: int = 0
    tests_total: int = 0
    duration_s: float = 0.0
    stdout_tail: str = ""
    stderr_tail: str = ""
    error: str = ""

    @property
    def passed(self) -> bool:
        return self.status == PASSED

    def to_dict(self) -> dict:
        return asdict(self)


@runtime_checkable
class Executor(Protocol):
    """Runs jobs in isolation; ``run`` returns one result per job, in order."""

    name: str

    def run(self, jobs: list[ExecJob]) -> list[ExecResult]: ...

    def close(self) -> None: ...
