"""DockerExecutor: a pool of warm containers, each running the job runner on its stdin.

Each container is started once (``docker run -i``) with no network, a read-only root, size-
capped tmpfs work dirs (``noexec``), a non-root user, every capability dropped,
``no-new-privileges``, an init, pids, memory (= memory+swap) and CPU limits, no log
driver, and a label naming its owner. Jobs then travel over the attached stdin/stdout to
the runner, which forks one process per job: no ``docker exec`` or ``docker run`` per job.
A container is replaced after ``recycle_after`` jobs and after any timeout, memory kill,
crash, leftover process or failed health check. Labelled containers whose owner process
is gone are removed at start; ours are removed at close and at interpreter exit.

The Docker CLI is used rather than the Python SDK: it is on every machine that has an
engine, needs no extra dependency, and speaks to remote engines through ``DOCKER_HOST``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess

from genetic_instruct.execution._pool import (ExecutorUnavailable, Limits, PoolExecutor,
                                              RunnerPool, RunnerProcess, default_workers,
                                              runner_source)

DEFAULT_IMAGE = "genetic-instruct-sandbox:latest"
LABEL = "genetic-instruct.sandbox"
OWNER_LABEL = "genetic-instruct.owner"
SANDBOX_UID = "10001:10001"
INSTALL_HINT = ("install and start Docker (apt-get install docker.io; dockerd &), "
                "then run `genetic-instruct sandbox build`")


def docker_cli() -> str | None:
    return shutil.which("docker")


def _docker(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess:
    return subprocess.run([docker_cli() or "docker", *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def engine_version(timeout: float = 10.0) -> str | None:
    """The engine's version when one answers, else None."""
    if not docker_cli():
        return None
    try:
        done = _docker("version", "--format", "{{.Server.Version}}", timeout=timeout)
    except (subprocess.TimeoutExpired, OSError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def image_exists(image: str = DEFAULT_IMAGE) -> bool:
    try:
        return _docker("image", "inspect", "--format", "{{.Id}}", image).returncode == 0
    except (subprocess.TimeoutExpired, OSError):
        return False


def remove_leftovers(owner: str | None = None) -> int:
    """Remove labelled containers of ``owner``, or those whose owner process is gone."""
    try:
        listed = _docker("ps", "-a", "--filter", f"label={LABEL}", "--format",
                         f'{{{{.ID}}}} {{{{.Label "{OWNER_LABEL}"}}}}')
    except (subprocess.TimeoutExpired, OSError):
        return 0
    host = socket.gethostname()
    doomed = []
    for line in listed.stdout.splitlines():
        cid, _, label = line.partition(" ")
        label_host, pid, _ = (label.split(":") + ["", ""])[:3]
        if label == owner or (owner is None and label_host == host and not _pid_alive(pid)):
            doomed.append(cid)
    if doomed:
        try:
            _docker("rm", "-f", *doomed, timeout=60)
        except (subprocess.TimeoutExpired, OSError):
            return 0
    return len(doomed)


def _pid_alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


class DockerExecutor(PoolExecutor):
    """About one warm container per core, each running the job runner.

    Args:
        workers: containers (default: one per core).
        timeout_s: wall-clock seconds per job; None uses each job's ``timeout_s``.
        memory_mb: address-space limit per job process; the container gets this plus
            its tmpfs and the runner's share as its memory (and memory+swap) limit.
        recycle_after: replace a container after this many jobs.
        image: the sandbox image (``genetic-instruct sandbox build`` makes it).
        cpus: CPU limit per container.
        pids: process limit per container.
        tmpfs_mb: size of each of ``/work`` and ``/tmp``.
    """

    name = "docker"

    def __init__(self, workers: int | None = None, timeout_s: float | None = None,
                 memory_mb: int = 512, recycle_after: int = 500, *,
                 image: str = DEFAULT_IMAGE, cpus: float = 1.0, pids: int = 128,
                 tmpfs_mb: int = 64, grace_s: float = 10.0, warm: bool = True) -> None:
        if not docker_cli():
            raise ExecutorUnavailable(f"docker: the docker CLI is not installed: {INSTALL_HINT}")
        if not engine_version():
            raise ExecutorUnavailable(f"docker: no Docker engine answers: {INSTALL_HINT}")
        if not image_exists(image):
            raise ExecutorUnavailable(f"docker: image {image} is missing: run `genetic-instruct "
                                      "sandbox build` (or scripts/prepare-sandbox.sh)")
        self.image, self.cpus, self.pids, self.tmpfs_mb = image, cpus, pids, tmpfs_mb
        self.memory_mb = memory_mb
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._source = runner_source()
        remove_leftovers()
        self.pool = RunnerPool(self.name, self._spawn, workers=workers or default_workers(),
                               limits=Limits(timeout_s=timeout_s, memory_mb=memory_mb,
                                             grace_s=grace_s),
                               recycle_after=recycle_after, warm=False)
        self._register()
        try:
            if warm:
                self.pool.warm()
        except Exception as exc:  # noqa: BLE001 - one clear line for the user
            self.close()
            raise ExecutorUnavailable(f"docker: a sandbox container did not start: {exc}") from exc

    def argv(self, name: str) -> list[str]:
        """The ``docker run`` command line of one warm container."""
        uid, gid = SANDBOX_UID.split(":")
        tmpfs = f"rw,nosuid,nodev,noexec,size={self.tmpfs_mb}m,uid={uid},gid={gid},mode=0700"
        memory = f"{self.memory_mb + 2 * self.tmpfs_mb + 16 + 128}m"
        return [docker_cli() or "docker", "run", "-i", "--rm", "--name", name,
                "--label", f"{LABEL}=1", "--label", f"{OWNER_LABEL}={self.owner}",
                "--init", "--network", "none", "--read-only",
                "--tmpfs", f"/work:{tmpfs}", "--tmpfs", f"/tmp:{tmpfs}", "--shm-size", "16m",
                "--user", SANDBOX_UID, "--cap-drop", "ALL",
                "--security-opt", "no-new-privileges", "--pids-limit", str(self.pids),
                "--memory", memory, "--memory-swap", memory, "--cpus", str(self.cpus),
                "--ulimit", "core=0", "--ulimit", "nofile=1024:1024",
                "--oom-score-adj", "1000", "--log-driver", "none", "--hostname", "sandbox",
                "--workdir", "/work", "--env", "HOME=/work", "--entrypoint", "python3",
                self.image, "-I", "-c", self._source, "--mode", "sandbox", "--root", "/work"]

    def _spawn(self, slot: int) -> RunnerProcess:
        name = f"gi-sandbox-{os.getpid()}-{slot}-{secrets.token_hex(3)}"

        def remove() -> None:
            try:
                _docker("rm", "-f", name, timeout=60)
            except (subprocess.TimeoutExpired, OSError):
                pass

        try:
            return RunnerProcess(self.argv(name), start_timeout=60.0, on_close=remove,
                                 label=f"container {name}")
        except Exception:
            remove()
            raise

    def close(self) -> None:
        super().close()
        remove_leftovers(self.owner)
