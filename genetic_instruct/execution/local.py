"""LocalExecutor: the runner as plain host processes. NOT a sandbox.

Jobs get a fresh forked process with rlimits, a wall clock and a private scratch
directory, exactly as in a sandbox, but they run as the calling user on the host: they
can read its files, reach the network and signal its processes. Use it only for trusted
code or tests, and only by choosing it explicitly (``make_executor("local")``).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import warnings

from genetic_instruct.execution._pool import (Limits, PoolExecutor, RunnerPool, RunnerProcess,
                                              default_workers, runner_path)


class UnsafeExecutorWarning(UserWarning):
    """Untrusted code is about to run outside any sandbox."""


class LocalExecutor(PoolExecutor):
    """About one warm runner process per core on the host, without isolation.

    Args:
        workers: runner processes (default: one per core).
        timeout_s: wall-clock seconds per job; None uses each job's ``timeout_s``.
        memory_mb: address-space limit per job process.
        recycle_after: restart a runner after this many jobs.
        acknowledge_unsafe: silence the warning that this is not a sandbox.
    """

    name = "local"

    def __init__(self, workers: int | None = None, timeout_s: float | None = None,
                 memory_mb: int = 512, recycle_after: int = 1000, *,
                 acknowledge_unsafe: bool = False, grace_s: float = 3.0, warm: bool = True) -> None:
        if not acknowledge_unsafe:
            warnings.warn("executor 'local' runs untrusted code as plain host processes: it is "
                          "not a sandbox (use docker or bwrap)", UnsafeExecutorWarning,
                          stacklevel=2)
        self._python = sys.executable
        self.pool = RunnerPool(self.name, self._spawn, workers=workers or default_workers(),
                               limits=Limits(timeout_s=timeout_s, memory_mb=memory_mb,
                                             grace_s=grace_s),
                               recycle_after=recycle_after, warm=warm)
        self._register()

    def _spawn(self, slot: int) -> RunnerProcess:
        root = tempfile.mkdtemp(prefix=f"gi-local-{slot}-")
        argv = [self._python, "-I", runner_path(), "--mode", "local", "--root", root]
        return RunnerProcess(argv, start_timeout=30.0, label=f"local runner {slot}",
                             on_close=lambda: shutil.rmtree(root, ignore_errors=True))
