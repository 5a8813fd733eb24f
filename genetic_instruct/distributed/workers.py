"""Backend and sandbox actors, and the proxies that colony actors call them through.

A ``BackendActor`` holds one backend (as ``make_backends`` builds it, with the response
cache). Colonies send it whole batches; batches that arrive together (within
``window_s``, or once every colony has sent one) are merged into one call, so the model
sees one batch per phase across colonies, as in the single-process loop. An
``ExecutorActor`` holds one executor (``executor_from_config``).
"""

from __future__ import annotations

import threading
from pathlib import Path

from ..assemble import executor_from_config, make_backends
from ..config import RunConfig, validate_config
from ..execution.base import ExecJob, ExecResult
from ..llm.base import ChatRequest, Completion


def single_backend_config(cfg: RunConfig, name: str) -> RunConfig:
    """``cfg`` with only backend ``name``, every role pointing at it."""
    data = cfg.model_dump(mode="json")
    data["backends"] = {name: data["backends"][name]}
    data["roles"] = {role: {**rc, "backend": name} for role, rc in data["roles"].items()}
    return validate_config(data)


class BackendActor:
    """One backend; ``generate`` takes a colony's batch and may merge it with others'."""

    def __init__(self, cfg: RunConfig, name: str, cache: Path | None = None,
                 expected: int = 1, window_s: float = 0.05):
        # built by setup(), or by the first batch after Ray restarted the actor: an error
        # raised here would reach the driver without its cause
        self.cfg, self.name, self.cache = cfg, name, cache
        self.backend = None
        self.lock = threading.Lock()
        self.expected = max(1, expected)  # callers that usually send a batch together
        self.window_s = window_s
        self.cond = threading.Condition()
        self.queue: list[tuple[list[ChatRequest], dict]] = []
        self.busy = False
        self.calls = 0    # batches received
        self.batches = 0  # calls made to the backend

    def setup(self) -> str:
        with self.lock:
            if self.backend is None:
                self.backend = make_backends(single_backend_config(self.cfg, self.name),
                                             self.cache)[self.name]
        return self.backend.name

    def stats(self) -> dict:
        """Batches received and sent, the GPUs Ray gave this actor, torch's threads."""
        import sys

        import ray

        torch = sys.modules.get("torch")
        return {"calls": self.calls, "batches": self.batches, "gpus": ray.get_gpu_ids(),
                "threads": torch.get_num_threads() if torch else None}

    def generate(self, requests: list[ChatRequest]) -> list[Completion]:
        box: dict = {}
        with self.cond:
            self.calls += 1
            self.queue.append((requests, box))
            self.cond.notify_all()
            while "out" not in box and "error" not in box:
                if self.busy:
                    self.cond.wait()
                    continue
                self.busy = True  # this caller sends the next merged batch
                self.cond.wait_for(lambda: len(self.queue) >= self.expected, self.window_s)
                batch, self.queue = self.queue, []
                self.cond.release()
                try:
                    self._send(batch)
                finally:
                    self.cond.acquire()
                    self.busy = False
                    self.cond.notify_all()
        if "error" in box:
            raise box["error"]
        return box["out"]

    def _send(self, batch: list[tuple[list[ChatRequest], dict]]) -> None:
        merged = [req for reqs, _ in batch for req in reqs]
        self.batches += 1
        try:
            self.setup()
            comps = self.backend.generate(merged) if merged else []
        except Exception as exc:  # noqa: BLE001 - every caller of the batch gets it
            for _, box in batch:
                box["error"] = exc
            return
        start = 0
        for reqs, box in batch:
            box["out"] = comps[start:start + len(reqs)]
            start += len(reqs)


class ExecutorActor:
    """One executor (a pool of sandboxes on the node the actor lives on)."""

    def __init__(self, cfg: RunConfig):
        self.cfg = cfg
        self.executor = None  # built by setup() or the first run (after a restart)

    def setup(self) -> str:
        if self.executor is None:
            self.executor = executor_from_config(self.cfg)
        return self.executor.name

    def run(self, jobs: list[ExecJob]) -> list[ExecResult]:
        self.setup()
        return self.executor.run(jobs)

    def close(self) -> None:
        if self.executor is not None:
            self.executor.close()
            self.executor = None


class BackendProxy:
    """The Backend protocol over a ``BackendActor`` handle."""

    def __init__(self, handle, name: str):
        self.handle = handle
        self.name = name

    def generate(self, requests: list[ChatRequest]) -> list[Completion]:
        import ray

        return ray.get(self.handle.generate.remote(requests))


class ExecutorProxy:
    """The Executor protocol over an ``ExecutorActor`` handle."""

    name = "ray"

    def __init__(self, handle):
        self.handle = handle

    def run(self, jobs: list[ExecJob]) -> list[ExecResult]:
        import ray

        return ray.get(self.handle.run.remote(jobs)) if jobs else []

    def close(self) -> None:
        """The driver ends the actor; a colony only lets go of its handle."""
