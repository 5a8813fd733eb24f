"""``difficulty``: how often fresh coder samples solve the candidate's task.

The coder role's backend writes ``samples`` independent solutions to each candidate's
instruction: one request per candidate with ``n = samples``, the coder role's sampling
(temperature, top_p, max_tokens) and a seed from the run seed, the candidate's id and
"difficulty" (so not the seed that wrote the candidate's own solution); all candidates go
in one ``generate`` call. Every sample runs against the candidate's tests, all of them in
one ``executor.run`` batch. A sample without a usable solution (no code, or no
``entry_point``) counts as failing and is not run.

p = passing samples / samples; value = difficulty = 1 - p (harder scores higher).

Options:

- ``samples`` (default 4).
- ``min_pass`` (default 0.0), ``max_pass`` (default 1.0): a candidate whose p lies outside
  [min_pass, max_pass] fails, e.g. "every sample solves it (4/4): too easy" or "no sample
  solves it (0/4)". A gate by default, though the defaults reject nothing.

Weak tests. The executor reports only how many asserts passed, not what a solution
returned, so "the samples agree with each other against the tests" is judged by those
counts: ``weak_tests`` is true when the candidate's own solution passes its tests, at least
two samples ran and failed (status ``failed``: they loaded and ran every assert), and all
of those failed the same number of asserts. Then the tests may check a mistake the
candidate's solution shares, or an ambiguous reading of the instruction. It is a flag in
``detail`` only: it changes neither value nor verdict. The own solution's result is taken
from the ``execution`` record when one is there; otherwise it runs in the same batch.

detail: ``p``, ``passes``, ``n`` (samples asked for), ``samples`` (the solutions that ran,
with status and asserts passed: preference export pairs them), ``statuses`` (per sample: ``passed``,
``failed``, ``error``, ``timeout``, ... or ``unparseable``), ``asserts_passed`` (per
sample, None where it did not run), ``weak_tests``.
"""

from __future__ import annotations

from ..config import RoleConfig
from ..evolution.operators import sampling_for, solve_request
from ..evolution.parsing import ParseError, extract_solution
from ..execution.base import FAILED, ExecJob, Executor
from ..individual import FitnessRecord, Individual
from ..llm.base import Backend
from .prompting import need_backend, seed_for

UNPARSEABLE = "unparseable"


class DifficultyFitness:
    """Gate: the share of independent coder samples that pass (see the module docstring)."""

    name = "difficulty"
    gate = True
    roles = ("coder",)
    needs_executor = True

    def __init__(self, llms: dict[str, Backend | None] | None = None,
                 role_configs: dict[str, RoleConfig] | None = None,
                 executor: Executor | None = None, seed: int = 0, timeout_s: float = 10.0,
                 samples: int = 4, min_pass: float = 0.0, max_pass: float = 1.0):
        if not isinstance(samples, int) or samples < 1:
            raise ValueError(f"samples must be a whole number >= 1 (got {samples!r})")
        if not 0 <= min_pass <= max_pass <= 1:
            raise ValueError(f"need 0 <= min_pass <= max_pass <= 1 "
                             f"(got min_pass={min_pass!r}, max_pass={max_pass!r})")
        if executor is None:
            raise ValueError("'difficulty' needs an executor to run the samples")
        self.backend = need_backend(llms, "coder", self.name)
        self.role = (role_configs or {}).get("coder") or RoleConfig()
        self.executor = executor
        self.seed = seed
        self.timeout_s = timeout_s
        self.samples = samples
        self.min_pass = min_pass
        self.max_pass = max_pass

    def score(self, individuals: list[Individual]) -> list[FitnessRecord]:
        if not individuals:
            return []
        requests = []
        for ind in individuals:
            sampling = sampling_for(self.role, seed_for(self.seed, ind.id, self.name), [])
            sampling.n = self.samples
            requests.append(solve_request(ind, sampling))
        completions = self.backend.generate(requests)

        jobs: list[ExecJob] = []
        codes: list[list[str | None]] = []  # per candidate, per sample: the parsed code
        where: list[list[int | None]] = []  # per candidate, per sample: its job's index
        own_at: list[int | None] = []  # per candidate: the own-solution job, if run here
        for ind, comp in zip(individuals, completions):
            slots: list[int | None] = []
            codes.append([])
            for k, text in enumerate(list(comp.texts)[:self.samples]):
                try:
                    code = extract_solution(text, ind.entry_point)
                except ParseError:
                    slots.append(None)
                    codes[-1].append(None)
                    continue
                codes[-1].append(code)
                slots.append(len(jobs))
                jobs.append(self._job(f"{ind.id}:difficulty:{k}", code, ind))
            slots += [None] * (self.samples - len(slots))
            where.append(slots)
            if _own_result(ind) is None:
                own_at.append(len(jobs))
                jobs.append(self._job(f"{ind.id}:own", ind.solution, ind))
            else:
                own_at.append(None)
        results = self.executor.run(jobs) if jobs else []

        records = []
        for ind, slots, own, code in zip(individuals, where, own_at, codes):
            ran = [results[j] if j is not None else None for j in slots]
            own_passed = _own_result(ind) if own is None else results[own].passed
            records.append(self._record(ran, bool(own_passed), code))
        return records

    def _job(self, job_id: str, code: str, ind: Individual) -> ExecJob:
        return ExecJob(id=job_id, solution=code, tests=list(ind.tests), timeout_s=self.timeout_s)

    def _record(self, ran: list, own_passed: bool, codes: list) -> FitnessRecord:
        n = self.samples
        passes = sum(1 for r in ran if r is not None and r.passed)
        p = passes / n
        failed = [r.tests_passed for r in ran if r is not None and r.status == FAILED]
        weak = own_passed and len(failed) >= 2 and len(set(failed)) == 1
        detail = {"p": round(p, 4), "passes": passes, "n": n,
                  "statuses": [r.status if r is not None else UNPARSEABLE for r in ran],
                  "asserts_passed": [r.tests_passed if r is not None else None for r in ran],
                  "weak_tests": weak,
                  # the sampled solutions that ran: export pairs failing ones as "rejected"
                  "samples": [{"solution": c, "status": r.status, "tests_passed": r.tests_passed,
                               "tests_total": r.tests_total}
                              for c, r in zip(codes, ran) if r is not None and c is not None]}
        passed = self.min_pass <= p <= self.max_pass
        if p > self.max_pass:
            detail["reason"] = (f"every sample solves it ({passes}/{n}): too easy"
                                if passes == n else
                                f"{passes}/{n} samples solve it: too easy "
                                f"(max_pass {self.max_pass:g})")
        elif p < self.min_pass:
            detail["reason"] = (f"no sample solves it (0/{n})" if passes == 0 else
                                f"only {passes}/{n} samples solve it (min_pass {self.min_pass:g})")
        return FitnessRecord(self.name, 1.0 - p, passed=passed, detail=detail)


def _own_result(ind: Individual) -> bool | None:
    """Whether the candidate's own solution passed, from its ``execution`` record."""
    rec = ind.fitness.get("execution")
    return rec.passed if rec is not None else None
