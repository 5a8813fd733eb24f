"""BwrapExecutor: the runner under bubblewrap, for machines without a Docker engine.

Each runner lives in its own bubblewrap sandbox: every namespace unshared (no network, own
PID namespace, own hostname, no IPC with the host), the host's ``/usr`` bound read-only and
nothing else of the host's file system, size-capped tmpfs for ``/work``, ``/tmp`` and
``/dev/shm``, a cleared environment, a new session (no terminal injection), no
capabilities, and ``--die-with-parent``. Run as root, it first drops to ``nobody`` so that
the sandbox is an unprivileged user namespace. Where the caller may create cgroups (root,
cgroup v1, or a delegated v2 subtree) each sandbox also gets a memory and pids limit,
nested under the caller's own cgroup; elsewhere the per-job rlimits (address space,
processes) are the only bound on memory, which is weaker than Docker's.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

from genetic_instruct.execution._pool import (ExecutorUnavailable, Limits, PoolExecutor,
                                              RunnerPool, RunnerProcess, default_workers,
                                              runner_source)

NOBODY = 65534
INSTALL_HINT = "install bubblewrap (apt-get install bubblewrap)"


def _world_readable(path: str) -> bool:
    """True when ``nobody`` can reach ``path``: every directory on the way is o+x."""
    current = Path(path).resolve()
    for part in [current, *current.parents]:
        mode = part.stat().st_mode
        if part != current and not mode & 0o001:
            return False
    return bool(current.stat().st_mode & 0o004)


def find_python(drop_to_nobody: bool) -> str:
    """A python3 the sandbox user can run: ours if reachable, else the system's."""
    candidates = [getattr(sys, "_base_executable", sys.executable), sys.executable,
                  "/usr/bin/python3", "/usr/local/bin/python3"]
    for candidate in candidates:
        if candidate and os.path.exists(candidate):
            real = os.path.realpath(candidate)
            if not drop_to_nobody or _world_readable(real):
                return real
    raise ExecutorUnavailable("bwrap: no python3 that user nobody can run: "
                              "install one (apt-get install python3)")


class _Cgroup:
    """Memory and pids limits for one sandbox, nested under our own cgroup (v1 or v2)."""

    def __init__(self, name: str, memory_bytes: int, pids: int) -> None:
        self.dirs: list[Path] = []
        try:
            own = {}
            for line in Path("/proc/self/cgroup").read_text().splitlines():
                _, controllers, path = line.split(":", 2)
                for controller in controllers.split(",") if controllers else ["unified"]:
                    own[controller] = path.lstrip("/")
            v1 = {"memory": ("memory.limit_in_bytes", memory_bytes), "pids": ("pids.max", pids)}
            if Path("/sys/fs/cgroup/cgroup.controllers").exists():  # pure v2
                base = Path("/sys/fs/cgroup", own.get("unified", ""), name)
                self._make(base, [("memory.max", memory_bytes), ("memory.swap.max", 0),
                                  ("pids.max", pids)])
            else:
                for controller, (knob, value) in v1.items():
                    base = Path("/sys/fs/cgroup", controller, own.get(controller, ""), name)
                    self._make(base, [(knob, value)])
        except (OSError, ValueError):
            self.remove()

    def _make(self, path: Path, knobs: list[tuple[str, int]]) -> None:
        path.mkdir()
        self.dirs.append(path)
        for knob, value in knobs:
            if (path / knob).exists():
                (path / knob).write_text(str(value))

    def adopt_tree(self, pid: int) -> None:
        """Move ``pid`` and its descendants (the sandbox, before any job) into the cgroup."""
        pids, todo = [], [pid]
        while todo:
            current = todo.pop()
            pids.append(current)
            try:
                todo += [int(c) for c in Path(f"/proc/{current}/task/{current}/children")
                         .read_text().split()]
            except OSError:
                pass
        for path in self.dirs:
            for member in pids:
                try:
                    (path / "cgroup.procs").write_text(str(member))
                except OSError:
                    pass

    def remove(self) -> None:
        for path in self.dirs:
            for _ in range(50):  # the sandbox's processes may take a moment to be gone
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)
        self.dirs = []


class BwrapExecutor(PoolExecutor):
    """About one warm bubblewrap sandbox per core, each running the job runner.

    Args:
        workers: sandboxes (default: one per core).
        timeout_s: wall-clock seconds per job; None uses each job's ``timeout_s``.
        memory_mb: address-space limit per job process (and the sandbox's cgroup limit,
            plus tmpfs and runner overhead, where cgroups are available).
        recycle_after: replace a sandbox after this many jobs.
        tmpfs_mb: size of each of ``/work`` and ``/tmp``.
        nproc: processes a job may run (RLIMIT_NPROC inside the sandbox's user namespace).
        python: interpreter to run inside (default: ours if ``nobody`` can run it).
    """

    name = "bwrap"

    def __init__(self, workers: int | None = None, timeout_s: float | None = None,
                 memory_mb: int = 512, recycle_after: int = 500, *, tmpfs_mb: int = 64,
                 nproc: int = 64, python: str | None = None, cgroups: bool = True,
                 grace_s: float = 3.0, warm: bool = True) -> None:
        self.bwrap = shutil.which("bwrap")
        if not self.bwrap:
            raise ExecutorUnavailable(f"bwrap: bubblewrap is not installed: {INSTALL_HINT}")
        self.drop = os.geteuid() == 0
        self.python = python or find_python(self.drop)
        self.tmpfs_mb = tmpfs_mb
        self.memory_mb = memory_mb
        self.nproc = nproc
        self.cgroups = cgroups
        self._source = runner_source()
        self.pool = RunnerPool(self.name, self._spawn, workers=workers or default_workers(),
                               limits=Limits(timeout_s=timeout_s, memory_mb=memory_mb,
                                             nproc=nproc, grace_s=grace_s),
                               recycle_after=recycle_after, warm=False)
        self._register()
        try:
            if warm:
                self.pool.warm()
        except Exception as exc:  # noqa: BLE001 - one clear line for the user
            self.pool.close()
            raise ExecutorUnavailable(f"bwrap: a sandbox did not start ({exc}); check that user "
                                      "namespaces are allowed (sysctl user.max_user_namespaces)"
                                      ) from exc

    def argv(self) -> list[str]:
        """The bubblewrap command line of one sandbox."""
        size = str(self.tmpfs_mb << 20)
        args = [self.bwrap, "--unshare-all", "--die-with-parent", "--new-session",
                "--ro-bind", "/usr", "/usr"]
        for top in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
            path = f"/{top}"
            if os.path.islink(path):
                args += ["--symlink", os.readlink(path), path]
            elif os.path.isdir(path):
                args += ["--ro-bind", path, path]
        prefix = str(Path(self.python).resolve().parent.parent)
        if not prefix.startswith("/usr"):
            args += ["--ro-bind", prefix, prefix]
        args += ["--proc", "/proc", "--dev", "/dev",
                 "--size", size, "--tmpfs", "/tmp", "--size", size, "--tmpfs", "/work",
                 "--size", str(16 << 20), "--tmpfs", "/dev/shm",
                 "--chdir", "/work", "--clearenv", "--setenv", "PATH", "/usr/bin:/bin",
                 "--setenv", "HOME", "/work", "--setenv", "LANG", "C.UTF-8",
                 "--hostname", "sandbox", "--cap-drop", "ALL",
                 self.python, "-I", "-c", self._source, "--mode", "sandbox", "--root", "/work"]
        return args

    def _spawn(self, slot: int) -> RunnerProcess:
        cgroup = None
        if self.cgroups and self.drop:
            memory = (self.memory_mb + 3 * self.tmpfs_mb + 128) << 20
            cgroup = _Cgroup(f"genetic-instruct-{os.getpid()}-{slot}-{os.urandom(3).hex()}",
                             memory, self.nproc + 16)
        drop = {"user": NOBODY, "group": NOBODY, "extra_groups": []} if self.drop else {}
        runner = RunnerProcess(self.argv(), start_timeout=30.0, label=f"bwrap sandbox {slot}",
                               env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
                               on_close=cgroup.remove if cgroup else None, **drop)
        if cgroup and cgroup.dirs:
            cgroup.adopt_tree(runner.proc.pid)
        return runner
