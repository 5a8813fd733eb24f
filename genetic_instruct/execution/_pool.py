"""Client side of the runner protocol, shared by the Docker, bubblewrap and local executors.

A :class:`RunnerProcess` is one runner (``sandbox/runner.py``) behind a pipe: a container,
a bubblewrap sandbox or a plain process. A :class:`RunnerPool` keeps ``workers`` of them
warm, sends the jobs of a ``run`` call in chunks (one message per chunk of up to
``max_batch`` jobs) to whichever is idle, reads the nonce-tagged reply, and retires a
runner after ``recycle_after`` jobs, after any timeout, memory kill, crash or leftover
process, and when a periodic health check fails. When a sandbox dies under a chunk, the
chunk's jobs run again one at a time, so that only the job that killed it is blamed.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import queue
import secrets
import select
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from typing import Callable

from genetic_instruct.execution.base import CRASHED, MEMORY, TIMEOUT, ExecJob, ExecResult

log = logging.getLogger(__name__)

RUNNER_PROTOCOL = 1
_LIVE: set = set()  # executors not closed yet; closed at interpreter exit


def runner_path() -> str:
    """Path of the runner script shipped with the package (``sandbox/runner.py``)."""
    return str(resources.files("genetic_instruct.execution").joinpath("runner.py"))


def runner_source() -> str:
    """The runner's source, passed to ``python3 -c`` inside a sandbox."""
    return resources.files("genetic_instruct.execution").joinpath("runner.py").read_text()


class ExecutorUnavailable(Exception):
    """A sandbox engine is missing; the message is one line saying what and how to fix it."""


@dataclass
class Limits:
    """Per-job limits sent to the runner; ``timeout_s`` None means each job's own."""

    timeout_s: float | None = None
    memory_mb: int = 512
    output_limit: int = 1 << 20
    nproc: int = 0
    grace_s: float = 5.0


class RunnerProcess:
    """One runner behind a pipe: send a request line, read its reply line before a deadline."""

    def __init__(self, argv: list[str], *, start_timeout: float = 30.0,
                 env: dict[str, str] | None = None, on_close: Callable[[], None] | None = None,
                 label: str = "runner", **popen: object) -> None:
        self.label = label
        self.jobs = 0
        self.cpu_s = 0.0  # as of the last ping: the runner's and its jobs' CPU seconds
        self.broken = ""
        self._on_close = on_close
        self._buf = b""
        self._stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._stderr, env=env, start_new_session=True,
                                     **popen)
        hello = self._read_reply(time.monotonic() + start_timeout)
        if not hello or hello.get("hello") != "genetic-instruct-runner":
            detail = f"{self.broken or f'unexpected hello {hello!r}'}: {self.stderr_tail()}"
            self.close()
            raise RuntimeError(f"{label} did not start: {detail}")
        if hello.get("protocol") != RUNNER_PROTOCOL:
            self.close()
            raise RuntimeError(f"{label} speaks runner protocol {hello.get('protocol')}, "
                               f"not {RUNNER_PROTOCOL}: rebuild the sandbox image")
        self.hello = hello

    def request(self, message: dict, timeout: float) -> dict | None:
        """Send one request; return its reply, or None (``broken`` says why)."""
        nonce = secrets.token_hex(12)
        line = (json.dumps({**message, "nonce": nonce}) + "\n").encode()
        try:
            self.proc.stdin.write(line)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            self.broken = "runner exited"
            return None
        reply = self._read_reply(time.monotonic() + timeout)
        if reply is not None and reply.get("nonce") != nonce:
            self.broken = "reply with a wrong nonce"
            return None
        return reply

    def ping(self, timeout: float = 5.0) -> bool:
        """Health check: no leftover process or file in the sandbox."""
        reply = self.request({"op": "ping"}, timeout)
        if reply is not None and not reply.get("ok"):
            self.broken = f"health check failed: {reply.get('detail')}"
        self.cpu_s = float(reply.get("cpu_s", 0.0)) if reply else 0.0
        return bool(reply and reply.get("ok"))

    def _read_reply(self, deadline: float) -> dict | None:
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                self.broken = "no reply before the deadline"
                return None
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                self.broken = "runner exited"
                return None
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        try:
            return json.loads(line)
        except ValueError:
            self.broken = "unreadable reply"
            return None

    def stderr_tail(self, size: int = 400) -> str:
        try:
            self._stderr.seek(0, os.SEEK_END)
            end = self._stderr.tell()
            self._stderr.seek(max(0, end - size))
            return " ".join(self._stderr.read().decode("utf-8", "replace").split())
        except (OSError, ValueError):
            return ""

    def close(self) -> None:
        """Ask the runner to leave, then make sure it and its sandbox are gone."""
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()  # end of input: the runner sweeps and exits
                self.proc.wait(timeout=2 if not self.broken else 0.2)
            except (OSError, subprocess.TimeoutExpired, ValueError):
                self.proc.kill()
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
        for stream in (self.proc.stdin, self.proc.stdout, self._stderr):
            try:
                stream.close()
            except (OSError, ValueError):
                pass
        if self._on_close:
            self._on_close()
            self._on_close = None


def _no_reply(job: ExecJob, status: str, error: str, duration: float = 0.0) -> ExecResult:
    """The result of a job whose sandbox gave no answer (did not start, died, hung)."""
    return ExecResult(id=job.id, status=status, tests_total=len(job.tests),
                      duration_s=round(duration, 4), error=error)


class RunnerPool:
    """``workers`` warm runners; jobs go to whichever is idle; anomalies retire a runner."""

    def __init__(self, name: str, spawn: Callable[[int], RunnerProcess], *, workers: int,
                 limits: Limits, recycle_after: int = 500, health_every: int = 50,
                 max_batch: int = 16, warm: bool = True) -> None:
        self.name = name
        self.limits = limits
        self.recycle_after = recycle_after
        self.health_every = health_every
        self.max_batch = max_batch
        self.workers = max(1, int(workers))
        self.recycled = 0
        self._spawn = spawn
        self._slots: queue.Queue = queue.Queue()
        self._runners: set[RunnerProcess] = set()
        self._lock = threading.Lock()
        self._threads = ThreadPoolExecutor(self.workers, thread_name_prefix=f"{name}-job")
        self._retirer = ThreadPoolExecutor(2, thread_name_prefix=f"{name}-retire")
        self._retiring: list = []
        self._closed = False
        for slot in range(self.workers):
            self._slots.put((slot, None))
        if warm:
            self.warm()

    def warm(self) -> None:
        """Start every runner now (in parallel) instead of on first use."""
        slots = [self._slots.get() for _ in range(self.workers)]
        try:
            started = list(self._threads.map(
                lambda item: item[1] if item[1] is not None else self._start(item[0]), slots))
        except BaseException:
            for slot, runner in slots:
                self._slots.put((slot, runner))
            raise
        for (slot, _), runner in zip(slots, started):
            self._slots.put((slot, runner))

    def _start(self, slot: int) -> RunnerProcess:
        runner = self._spawn(slot)
        with self._lock:
            self._runners.add(runner)
        return runner

    def run(self, jobs: list[ExecJob]) -> list[ExecResult]:
        """Run ``jobs`` in chunks (one message per chunk) over the idle runners, in order."""
        if self._closed:
            raise RuntimeError(f"{self.name} executor is closed")
        size = max(1, min(self.max_batch, len(jobs) // (self.workers * 4)))
        chunks = [jobs[i:i + size] for i in range(0, len(jobs), size)]
        return [result for part in self._threads.map(self._run_chunk, chunks) for result in part]

    def _run_chunk(self, jobs: list[ExecJob]) -> list[ExecResult]:
        results: list[ExecResult] = []
        solo = False  # after a sandbox died under a batch, find the culprit one job at a time
        while len(results) < len(jobs):
            todo = jobs[len(results):]
            slot, runner = self._slots.get()
            try:
                if runner is None:
                    try:
                        runner = self._start(slot)
                    except Exception as exc:  # noqa: BLE001 - reported as the job's result
                        results.append(_no_reply(todo[0], CRASHED,
                                                f"{self.name}: sandbox did not start: {exc}"))
                        continue
                batch = todo[:1] if solo else todo
                got, retire = self._submit(runner, batch)
                solo = solo or not got
                results += got
                if not retire and self.health_every and runner.jobs % self.health_every < len(got):
                    retire = not runner.ping()
                if retire:
                    self._retire(runner)
                    runner = None
            finally:
                self._slots.put((slot, runner))
        return results

    def _message(self, job: ExecJob) -> dict:
        limits = self.limits
        return {"id": job.id, "solution": job.solution, "tests": list(job.tests),
                "setup": job.setup, "timeout_s": self._timeout(job),
                "memory_mb": limits.memory_mb, "output_limit": limits.output_limit,
                "nproc": limits.nproc}

    def _timeout(self, job: ExecJob) -> float:
        return float(self.limits.timeout_s if self.limits.timeout_s is not None else job.timeout_s)

    def _submit(self, runner: RunnerProcess, batch: list[ExecJob]) -> tuple[list[ExecResult], bool]:
        """Run ``batch`` on ``runner``: results for a prefix of it, and whether to retire it.

        An empty list means the sandbox died under a batch of several jobs: the caller
        runs them again one by one, so that only the job that killed it is blamed.
        """
        # The runner stops a batch at its first timeout, so a live runner answers within one
        # job's timeout plus the others' run times (allowed 2 s each: a slower batch is
        # killed and run again job by job, which only costs time). A runner that a job has
        # stopped (SIGSTOP) holds a worker no longer than this.
        timeouts = [self._timeout(job) for job in batch]
        budget = max(timeouts) + 2.0 * (len(batch) - 1) + self.limits.grace_s
        started = time.monotonic()
        if len(batch) == 1:
            reply = runner.request({"op": "run", **self._message(batch[0])}, budget)
            replies = None if reply is None else [reply]
        else:
            reply = runner.request({"op": "batch", "jobs": [self._message(j) for j in batch]},
                                   budget)
            replies = None if reply is None else list(reply.get("results") or [])
        if replies is None:
            if len(batch) > 1:
                return [], True
            spent, job = time.monotonic() - started, batch[0]
            if runner.broken == "no reply before the deadline":
                return [_no_reply(job, TIMEOUT, f"sandbox did not answer within {budget:g} s; "
                                 "recycled", spent)], True
            return [_no_reply(job, CRASHED, f"sandbox died during the job ({runner.broken}); "
                             f"recycled {runner.stderr_tail()}".strip(), spent)], True
        results, retire = [], False
        for job, reply in zip(batch, replies):
            results.append(ExecResult(
                id=job.id, status=str(reply.get("status", CRASHED)),
                tests_passed=int(reply.get("tests_passed", 0)),
                tests_total=int(reply.get("tests_total", len(job.tests))),
                duration_s=float(reply.get("duration_s", 0.0)),
                stdout_tail=str(reply.get("stdout_tail", "")),
                stderr_tail=str(reply.get("stderr_tail", "")), error=str(reply.get("error", ""))))
            retire = retire or results[-1].status in (TIMEOUT, MEMORY, CRASHED) or bool(
                reply.get("leftovers"))
        runner.jobs += len(results)
        if not results:  # a runner that answers a batch with nothing is not healthy
            return [], True
        return results, retire or runner.jobs >= self.recycle_after

    def _retire(self, runner: RunnerProcess) -> None:
        with self._lock:
            self._runners.discard(runner)
            self.recycled += 1
            self._retiring = [f for f in self._retiring if not f.done()]
            self._retiring.append(self._retirer.submit(runner.close))

    def wait_retired(self) -> None:
        """Block until every retired runner's sandbox is gone."""
        with self._lock:
            pending = list(self._retiring)
        for future in pending:
            future.result()

    def health(self) -> list[str]:
        """Ping every runner (waiting until idle); return what is wrong (empty: all well)."""
        slots = [self._slots.get() for _ in range(self.workers)]
        problems = []
        try:
            for slot, runner in slots:
                if runner is not None and not runner.ping():
                    problems.append(f"{runner.label}: {runner.broken}")
        finally:
            for item in slots:
                self._slots.put(item)
        return problems

    def cpu_seconds(self) -> float:
        """CPU seconds the live runners and their jobs have used (pings them all)."""
        self.health()
        with self._lock:
            return sum(runner.cpu_s for runner in self._runners)

    def close(self) -> None:
        """Stop every runner and wait until their sandboxes are gone."""
        if self._closed:
            return
        self._closed = True
        self._threads.shutdown(wait=True)
        with self._lock:
            runners, self._runners = list(self._runners), set()
        # Plain threads, not the retirer: at interpreter exit (atexit), concurrent.futures
        # no longer accepts work, and the sandboxes must still be closed.
        closers = [threading.Thread(target=runner.close) for runner in runners]
        for closer in closers:
            closer.start()
        for closer in closers:
            closer.join()
        self._retirer.shutdown(wait=True)


@atexit.register
def _close_all() -> None:
    for executor in list(_LIVE):
        try:
            executor.close()
        except Exception:  # noqa: BLE001 - best effort at interpreter exit
            log.debug("closing %s failed", executor.name, exc_info=True)


def default_workers() -> int:
    """About one worker per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class PoolExecutor:
    """Base of the runner-backed executors: ``run`` batches, ``close`` and ``with`` clean up."""

    name = "pool"
    pool: RunnerPool

    def _register(self) -> None:
        """Close this executor at interpreter exit if nobody did."""
        _LIVE.add(self)

    def run(self, jobs: list[ExecJob]) -> list[ExecResult]:
        """Run every job; one result per job, in order."""
        return self.pool.run(list(jobs))

    def close(self) -> None:
        """Stop every runner and wait until their sandboxes are gone."""
        _LIVE.discard(self)
        self.pool.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
