#!/usr/bin/env python3
"""The genetic-instruct job server that runs inside the sandbox (stdlib only).

Protocol: one JSON object per line on stdin, one JSON reply per line on stdout. The first
line the runner writes is a hello (``{"hello": "genetic-instruct-runner", ...}``). Requests:

* ``{"op": "run", "nonce": N, "id": ID, "solution": S, "tests": [assert, ...],
  "setup": S, "timeout_s": T, "memory_mb": M, "output_limit": B}``: forks one fresh
  process for the job and replies ``{"nonce": N, "id": ID, "status": ..., "tests_passed":
  ..., "tests_total": ..., "duration_s": ..., "stdout_tail": ..., "stderr_tail": ...,
  "error": ..., "leftovers": K}``.
* ``{"op": "batch", "nonce": N, "jobs": [job, ...]}``: runs the jobs in order and replies
  ``{"nonce": N, "results": [reply, ...]}``, stopping after the first timeout, memory kill,
  crash or leftover process (the client runs the rest in a fresh sandbox). One message
  per batch instead of one per job is what keeps the Docker pool near the fork ceiling.
* ``{"op": "ping", "nonce": N}``: a health check; ``{"nonce": N, "ok": bool, "detail": D,
  "cpu_s": S}`` (S: CPU seconds of the runner and all the jobs it reaped).
* ``{"op": "exit"}`` or end of input: clean up and leave.

Each job runs in a forked child: new session, rlimits (CPU, address space, file size, open
files, processes), stdin from /dev/null, stdout/stderr into capped pipes, cwd in a job
directory that is wiped afterwards. The child runs ``setup`` and the solution, then each
test separately, and reports every step through a pipe of its own, each line tagged with a
per-job token; the parent only counts steps reported in order, so printing "PASSED", exiting
0 early or killing itself never passes. The parent enforces the wall clock by killing the
job's process group (and, in ``--mode sandbox``, every other process it may signal: the
sandbox is its own PID namespace), reaps what is left (the runner is a child subreaper) and
reports how many processes outlived the job, so that the client can recycle the sandbox.

Score gaming that the child's harness defeats:
* each test must be exactly one ``assert`` statement (no redefinition of the function
  under test, no walrus); the runner parses and compiles it before the fork (tests are
  short; the solution, which may be large, is compiled in the child under its limits);
* the runner never trusts ``AssertionError`` or the ``assert`` opcode: it evaluates the
  assert's expression itself. For a single comparison (``==``, ``!=``, ``<``, ``in``, ...)
  whose one side is plain data (builtin scalars and containers of them, exact types) and
  whose other side has a comparison method written in Python, it first compares that
  object with a fresh stranger object: if it claims to equal (contain, order against)
  that too, the test fails. An ``__eq__`` that always returns True, ``mock.ANY`` or a
  ``str`` subclass that equals everything cannot pass; ``Counter`` or a dataclass can;
* the tests see the builtins as they were before the job ran (a solution that patches
  ``builtins.len`` or ``AssertionError`` changes nothing for them), and the harness only
  uses references taken before the job's code ran; ``import __main__`` yields the job's
  own module, not the runner.

Known limits (documented, not defended):
* the job runs in a copy of the runner's memory: code that deliberately digs into the
  runner's frames, closures or objects (``gc``, ``sys._getframe``, ctypes) can find the
  report pipe and the token and forge counts, or rebind the harness's references;
* truthiness of non-plain objects (``assert obj``), chained or compound comparisons
  (``assert not f() != 1``, ``and``/``or``) and comparisons inside calls are evaluated as
  Python would; an ``__eq__`` that is honest with strangers but lies to the expected
  value's type is not caught;
* the job may kill (``kill -1``) or stop the runner, which runs as the same user: the
  client sees a crash or a timeout and recycles the sandbox; blocked signals protect it
  only from SIGTERM/SIGINT/SIGHUP (``kill 1``, forwarded by the container's init);
* the runner does not isolate the host: the Docker container or bubblewrap around it does
  (``--mode local`` isolates nothing).
"""

from __future__ import annotations

import ast
import builtins
import gc
import json
import os
import resource
import select
import signal
import stat
import sys
import time
import types

PROTOCOL = 1
PIPE_BUF = 4096
MAX_TEST_CHARS = 20_000
ANOMALIES = ("timeout", "memory", "crashed")  # after one of these the sandbox is recycled
TAIL_BYTES = 2048
LIMITS = {"timeout_s": 10.0, "memory_mb": 512, "output_limit": 1 << 20, "fsize_mb": 16,
          "nofile": 256, "nproc": 0}
PRELOAD = ("math", "re", "collections", "itertools", "functools", "heapq", "bisect", "string",
           "typing", "dataclasses", "json", "random", "operator", "copy", "datetime", "enum",
           "fractions", "decimal", "statistics", "array", "textwrap", "unicodedata")
SANDBOX_DIRS = ("/work", "/tmp", "/dev/shm")  # all a job can write to in a sandbox
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER = 1, 4, 36

# ----------------------------------------------------------------------- the job's harness

_SCALARS = frozenset({int, float, complex, bool, str, bytes, type(None)})
_SEQUENCES = frozenset({list, tuple, set, frozenset})
_SLOT_TYPES = (types.WrapperDescriptorType, types.MethodWrapperType,
               types.BuiltinFunctionType, types.MethodDescriptorType, type(None))
# Each comparison operator and the dunders that could decide it.
_OPS = {ast.Eq: ("__eq__",), ast.NotEq: ("__ne__", "__eq__"), ast.Lt: ("__lt__", "__gt__"),
        ast.LtE: ("__le__", "__ge__"), ast.Gt: ("__gt__", "__lt__"),
        ast.GtE: ("__ge__", "__le__"), ast.In: ("__eq__", "__hash__", "__contains__"),
        ast.NotIn: ("__eq__", "__hash__", "__contains__")}


# The default arguments below are the real builtins, bound before any job ran: a job that
# patches the builtins module cannot change what these checks see.

def _plain(value: object, depth: int = 0, type=type, all=all) -> bool:  # noqa: A002
    """True for builtin data of exact builtin types (no subclasses), nested up to 20 deep."""
    kind = type(value)
    if kind in _SCALARS:
        return True
    if depth > 20:
        return False
    if kind in _SEQUENCES:
        return all(_plain(item, depth + 1) for item in value)
    if kind is dict:
        return all(_plain(k, depth + 1) and _plain(v, depth + 1) for k, v in dict.items(value))
    return False


def _python_dunder(value: object, names: tuple[str, ...], type=type, any=any,  # noqa: A002
                   isinstance=isinstance, mro=type.__dict__["__mro__"]) -> bool:  # noqa: A002
    """True when any of ``names`` on ``type(value)`` is written in Python, not C."""
    for klass in mro.__get__(type(value)):
        attrs = type.__dict__["__dict__"].__get__(klass)
        if any(n in attrs and not isinstance(attrs[n], _SLOT_TYPES) for n in names):
            return True
    return False


class _Stranger:
    """An object no honest value equals, contains or orders against."""

    __slots__ = ()


def _compile_test(source: str) -> tuple:
    """Parse and compile one test in the runner, before the fork (where it costs no
    copy-on-write faults): ``(op, left, right, whole, error)``, code objects to evaluate.

    A test must be exactly one ``assert`` statement with no assignment expression; a
    single comparison is split into its two sides, so that the child can look at both.
    """
    try:
        if len(source) > MAX_TEST_CHARS:
            raise ValueError(f"a test may be {MAX_TEST_CHARS} characters at most")
        tree = ast.parse(source, "<test>", "exec")
        if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Assert):
            raise ValueError("a test must be exactly one assert statement")
        if ":=" in source and any(isinstance(node, ast.NamedExpr) for node in ast.walk(tree)):
            raise ValueError("assignment expressions are not allowed in tests")
        expr = tree.body[0].test

        def part(node: ast.expr):
            text = ast.get_source_segment(source, node)
            try:  # compiling source text is several times faster than compiling an AST
                return compile(f"({text})", "<test>", "eval", dont_inherit=True, optimize=0)
            except (SyntaxError, TypeError, ValueError):
                return compile(ast.fix_missing_locations(ast.Expression(node)), "<test>", "eval",
                               dont_inherit=True, optimize=0)

        if isinstance(expr, ast.Compare) and len(expr.ops) == 1 and type(expr.ops[0]) in _OPS:
            return type(expr.ops[0]), part(expr.left), part(expr.comparators[0]), None, ""
        return None, None, None, part(expr), ""
    except Exception as exc:  # noqa: BLE001 - SyntaxError, RecursionError, MemoryError...
        return None, None, None, None, _describe(exc)


def _make_check():
    """Build the test evaluator with references taken before any job code runs."""
    eval_, type_, bool_ = eval, type, bool
    plain, python_dunder, ops, stranger_type = _plain, _python_dunder, dict(_OPS), _Stranger
    decide = {ast.Eq: lambda a, b: a == b, ast.NotEq: lambda a, b: a != b,
              ast.Lt: lambda a, b: a < b, ast.LtE: lambda a, b: a <= b,
              ast.Gt: lambda a, b: a > b, ast.GtE: lambda a, b: a >= b,
              ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b}
    negative = (ast.NotEq, ast.NotIn)

    def suspicious(op: type, mine: object, mine_is_left: bool) -> bool:
        """Does ``mine`` compare as it would with the expected value against a stranger?"""
        stranger = stranger_type()
        try:
            said = bool_(decide[op](mine, stranger) if mine_is_left else decide[op](stranger, mine))
        except Exception:  # noqa: BLE001 - refusing to compare is the honest answer
            return False
        return said != (op in negative)

    def check(test: tuple, ns: dict) -> tuple[bool, str]:
        op, left_code, right_code, whole, error = test
        if error:
            return False, error
        if op is None:
            outcome = eval_(whole, ns)
        else:
            left, right = eval_(left_code, ns), eval_(right_code, ns)
            names = ops[op]
            for mine, other, is_left in ((left, right, True), (right, left, False)):
                if (plain(other) and not plain(mine) and python_dunder(mine, names)
                        and suspicious(op, mine, is_left)):
                    return False, (f"{type_(mine).__name__}.{names[0]} says the same of any "
                                   "object: not a real comparison")
            outcome = decide[op](left, right)
        return bool_(outcome), "" if outcome else "assertion failed"

    return check


class _Prepared:
    """Made once in the runner before any job, so a job cannot have tampered with it."""

    def __init__(self) -> None:
        self.builtins = dict(builtins.__dict__)
        self.check = _make_check()
        # Bound to fd 0, which is /dev/null in a job: input() sees end of file at once.
        self.stdin = open(0, encoding="utf-8", closefd=False)


def _describe(exc: BaseException, type=type, str=str) -> str:  # noqa: A002
    try:
        text = f"{type(exc).__name__}: {str(exc)}"
    except BaseException:  # noqa: BLE001 - an exception whose __str__ raises
        text = type(exc).__name__
    return " ".join(text.split())[:300]


def _job_main(job: dict, tests: list[tuple], token: str, report_fd: int,
              prepared: _Prepared) -> None:
    """Run one job in the forked child (``tests`` from ``_compile_test``); never returns."""
    def report(*words: str, write=os.write, join=" ".join) -> None:
        line = join((token, *words)).replace("\n", " ")
        write(report_fd, line.encode("utf-8", "replace")[:PIPE_BUF - 1] + b"\n")

    check, pristine, describe = prepared.check, prepared.builtins, _describe
    module = types.ModuleType("solution")
    ns = module.__dict__
    sys.modules["solution"] = sys.modules["__main__"] = module
    sys.argv = ["solution"]
    sys.stdin = prepared.stdin
    try:
        for part, source in (("setup", job.get("setup") or ""), ("solution", job["solution"])):
            code = compile(source, f"<{part}>", "exec", dont_inherit=True, optimize=0)
            exec(code, ns)
    except BaseException as exc:  # noqa: BLE001 - untrusted code may raise anything
        _flush()
        report("sol", "err", describe(exc))
        os._exit(0)
    _flush()
    report("sol", "ok")
    for index, test in enumerate(tests):
        try:
            # The tests see the builtins as they were before the job ran (the solution's
            # own functions keep whatever it did to the builtins module).
            ns["__builtins__"] = pristine
            ok, why = check(test, ns)
        except BaseException as exc:  # noqa: BLE001
            ok, why = False, describe(exc)
        _flush()
        report("test", f"{index}", "1" if ok else "0", why)
    report("done")
    os._exit(0)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:  # noqa: BLE001
            pass


def _limits(job: dict) -> list[tuple[int, int, int]]:
    """The job's rlimits, worked out in the runner before the fork."""
    timeout = int(float(job.get("timeout_s") or LIMITS["timeout_s"]))
    fsize = int(job.get("fsize_mb") or LIMITS["fsize_mb"]) << 20
    nofile = int(job.get("nofile") or LIMITS["nofile"])
    limits = [(resource.RLIMIT_CPU, timeout + 1, timeout + 2),
              (resource.RLIMIT_FSIZE, fsize, fsize), (resource.RLIMIT_NOFILE, nofile, nofile),
              (resource.RLIMIT_CORE, 0, 0)]
    for key, which in (("memory_mb", resource.RLIMIT_AS), ("nproc", resource.RLIMIT_NPROC)):
        value = int(job.get(key) or 0) << (20 if key == "memory_mb" else 0)
        if value > 0:
            limits.append((which, value, value))
    return limits


def _enter_child(fds: tuple[int, int, int, int], limits: list, workdir: str, mode: str) -> int:
    """Detach the forked child: session, file descriptors (0: /dev/null, 1 and 2: the
    output pipes, 3: the report pipe, nothing else), cwd, limits. As few calls as can be:
    every Python call after the fork costs copy-on-write faults."""
    os.setsid()
    if mode == "local":  # no namespace dies with the runner here: the job must
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    signal.pthread_sigmask(signal.SIG_SETMASK, ())  # the runner blocks a few: not the job
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    os.closerange(4, 256)  # the runner holds a dozen descriptors at most
    os.chdir(workdir)
    for which, soft, hard in limits:
        resource.setrlimit(which, (soft, hard))
    return 3


# ----------------------------------------------------------------------------- the server

_LIBC: list = []


def _prctl(option: int, value: int) -> bool:
    try:
        if not _LIBC:
            import ctypes
            _LIBC.append(ctypes.CDLL(None, use_errno=True))
        return _LIBC[0].prctl(option, value, 0, 0, 0) == 0
    except Exception:  # noqa: BLE001 - optional hardening
        return False


def _wipe(path: str, keep: str = "") -> bool:
    """Empty ``path`` (the directory ``keep`` in it stays, emptied); True when it worked.

    The job may have made directories unreadable or unwritable: they get mode 0700 first.
    """
    for attempt in (0, 1):
        try:
            for entry in list(os.scandir(path)):
                if entry.is_dir(follow_symlinks=False):
                    _wipe(entry.path)
                    if entry.path != keep:
                        os.rmdir(entry.path)
                else:
                    os.unlink(entry.path)
            return True
        except FileNotFoundError:
            return True
        except (OSError, RecursionError):
            if attempt:
                return False
            try:
                os.chmod(path, 0o700)
            except OSError:
                return False
    return False


class Runner:
    """Forks one process per job and cleans up after it."""

    def __init__(self, mode: str, root: str) -> None:
        self.mode = mode
        self.root = root
        self.workdir = os.path.join(root, "job")
        self.scratch = list(SANDBOX_DIRS) if mode == "sandbox" else [root]
        self.pid = os.getpid()
        self.children_file = f"/proc/self/task/{self.pid}/children"
        os.makedirs(self.workdir, exist_ok=True)
        # Jobs inherit this environment, their stdout/stderr objects and these references.
        os.environ.clear()
        os.environ.update({"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": self.workdir,
                           "TMPDIR": "/tmp" if mode == "sandbox" else self.workdir,
                           "LANG": "C.UTF-8"})
        for stream in (sys.stdout, sys.stderr):
            stream.reconfigure(encoding="utf-8", errors="backslashreplace")
        self.prepared = _Prepared()
        self.devnull = os.open(os.devnull, os.O_RDWR)  # the jobs' stdin
        _prctl(PR_SET_DUMPABLE, 0)  # a job may not open /proc/<runner>/fd or ptrace it
        _prctl(PR_SET_CHILD_SUBREAPER, 1)  # orphans of a job come back to us to be killed

    def run(self, job: dict, compiled: list[tuple] | None = None) -> dict:
        """Run one job (``compiled``: its tests from ``_compile_test``, if done already)."""
        tests = job.get("tests") or []
        reply = {"id": job.get("id", ""), "status": "error", "tests_passed": 0,
                 "tests_total": len(tests), "duration_s": 0.0, "stdout_tail": "",
                 "stderr_tail": "", "error": "", "leftovers": 0}
        timeout = float(job.get("timeout_s") or LIMITS["timeout_s"])
        cap = int(job.get("output_limit") or LIMITS["output_limit"])
        token = os.urandom(12).hex()
        if compiled is None:
            compiled = [_compile_test(str(test)) for test in tests]
        limits = _limits(job)
        pipes = [os.pipe() for _ in range(3)]
        reads = [r for r, _ in pipes]
        for r in reads:
            os.set_blocking(r, False)
        # Set up before the fork: whatever the runner writes while the job runs costs it a
        # copy-on-write fault per page.
        bufs = {r: bytearray() for r in reads}
        poller = select.poll()
        for r in reads if len(tests) > 64 else reads[:2]:
            poller.register(r, select.POLLIN)
        self._ready_workdir()
        sys.stdout.flush()
        started = time.monotonic()
        pid = os.fork()
        if pid == 0:  # the job
            try:
                fd = _enter_child((self.devnull, *(w for _, w in pipes)), limits, self.workdir,
                                  self.mode)
                _job_main(job, compiled, token, fd, self.prepared)
            finally:
                os._exit(70)
        for _, w in pipes:
            os.close(w)
        killed, status, usage = self._watch(pid, poller, reads, bufs, started + timeout, cap)
        reply["duration_s"] = round(time.monotonic() - started, 4)
        reply["leftovers"] = self.sweep()
        for r in reads:
            self._drain(r, bufs[r], cap)
            os.close(r)
        out, err, rep = (bytes(bufs[r]) for r in reads)
        reply["stdout_tail"] = out[-TAIL_BYTES:].decode("utf-8", "replace")
        reply["stderr_tail"] = err[-TAIL_BYTES:].decode("utf-8", "replace")
        self._verdict(reply, token, rep, killed, status, usage, job)
        if not all([_wipe(path, keep=self.workdir) for path in self.scratch]):
            reply["leftovers"] += 1  # files the runner could not remove: recycle the sandbox
        return reply

    def _ready_workdir(self) -> None:
        """The job directory exists, empty and ours (a job may have removed or locked it)."""
        try:
            mode = os.lstat(self.workdir).st_mode
        except FileNotFoundError:
            os.mkdir(self.workdir, 0o700)
            return
        if stat.S_IMODE(mode) != 0o700 or not stat.S_ISDIR(mode):
            if not stat.S_ISDIR(mode):
                os.unlink(self.workdir)
                os.mkdir(self.workdir, 0o700)
            os.chmod(self.workdir, 0o700)

    def safe_run(self, job: dict, compiled: list[tuple] | None = None) -> dict:
        """``run``, where a bug of the runner itself becomes a crashed result."""
        try:
            return self.run(job, compiled)
        except Exception as exc:  # noqa: BLE001 - a runner bug must not kill the server
            return {"id": job.get("id", ""), "status": "crashed", "leftovers": 1,
                    "error": f"runner: {_describe(exc)}",
                    "tests_total": len(job.get("tests") or [])}

    def _watch(self, pid: int, poller, reads: list[int], bufs: dict, deadline: float,
               cap: int) -> tuple[str, int, object]:
        """Wait for the job to exit, its deadline or its output cap, whichever is first.

        The report pipe is polled only for jobs with many tests: a few report lines fit in
        the pipe, and not waking up for each of them saves a context switch per test.
        """
        try:
            pidfd = os.pidfd_open(pid)
            poller.register(pidfd, select.POLLIN)
        except (AttributeError, OSError):
            pidfd = -1
        killed, exited = "", False
        while not exited:
            left = deadline - time.monotonic()
            if left <= 0:
                killed = "timeout"
                break
            wait = left if pidfd >= 0 else min(left, 0.005)
            for fd, _ in poller.poll(wait * 1000):
                if fd == pidfd:
                    continue
                data = self._read(fd)
                if data is None:
                    poller.unregister(fd)
                    continue
                bufs[fd] += data
                if fd != reads[2] and len(bufs[reads[0]]) + len(bufs[reads[1]]) > cap:
                    killed = "output_limit"
                if len(bufs[fd]) > 2 * cap:  # keep memory bounded: only tails matter
                    del bufs[fd][: len(bufs[fd]) - cap]
            if killed:
                break
            # WNOWAIT: the zombie keeps its process group id ours until we have killed it.
            exited = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
        if pidfd >= 0:
            os.close(pidfd)
        self._kill_group(pid)
        _, status, usage = os.wait4(pid, 0)
        return killed, status, usage

    @staticmethod
    def _read(fd: int) -> bytes | None:
        try:
            data = os.read(fd, 1 << 16)
        except BlockingIOError:
            return b""
        return data or None

    def _drain(self, fd: int, buf: bytearray, cap: int) -> None:
        while len(buf) <= 2 * cap:
            data = self._read(fd)
            if not data:
                return
            buf += data

    @staticmethod
    def _kill_group(pid: int) -> None:
        for kill in (os.killpg, os.kill):
            try:
                kill(pid, signal.SIGKILL)
            except OSError:
                pass

    def sweep(self) -> int:
        """Kill every process but ourselves (and init) until none is left; count them
        (zombies that only needed reaping do not count)."""
        if not self._survivors():
            return 0
        seen: set[int] = set()
        for _ in range(1000):
            self._reap()
            victims = self._survivors()
            if not victims:
                break
            seen.update(victims)
            if self.mode == "sandbox":
                try:
                    os.kill(-1, signal.SIGKILL)
                except OSError:
                    pass
            for victim in victims:
                self._kill_group(victim)
            time.sleep(0.001)
        return len(seen)

    def _survivors(self) -> list[int]:
        """Processes left: in a sandbox, all but init and us; on a host, our children."""
        if self.mode == "sandbox":
            try:
                os.kill(-1, 0)  # one call, nothing allocated, when (as usual) nobody is left
            except ProcessLookupError:
                return []
            return [int(p) for p in os.listdir("/proc")
                    if p.isdigit() and int(p) not in (1, self.pid)]
        try:
            fd = os.open(self.children_file, os.O_RDONLY)
        except OSError:
            return []
        try:
            return [int(p) for p in os.read(fd, 1 << 16).split()]
        finally:
            os.close(fd)

    @staticmethod
    def _reap() -> None:
        while True:
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    return
            except ChildProcessError:
                return

    def _verdict(self, reply: dict, token: str, rep: bytes, killed: str, status: int,
                 usage, job: dict) -> None:
        """Turn the child's reports and exit status into a status and counts."""
        solution, done, passed, expected, why, memory = None, False, 0, 0, "", False
        for line in rep.decode("utf-8", "replace").splitlines():
            tag, _, rest = line.partition(" ")
            kind, _, rest = rest.partition(" ")
            if tag != token:
                continue
            if kind == "sol" and solution is None:
                outcome, _, why = rest.partition(" ")
                solution = outcome == "ok"
            elif kind == "test" and solution and not done:
                index, _, rest = rest.partition(" ")
                ok, _, reason = rest.partition(" ")
                if index != str(expected):
                    continue
                expected += 1
                passed += ok == "1"
                if ok != "1" and not why:
                    why = f"test {index}: {reason}"
            elif kind == "done" and solution and expected == reply["tests_total"]:
                done = True
            memory = memory or "MemoryError" in rest
        reply["tests_passed"] = passed
        timeout = float(job.get("timeout_s") or LIMITS["timeout_s"])
        memory_mb = int(job.get("memory_mb") or 0)
        rss_mb = usage.ru_maxrss / 1024
        signum = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
        if killed == "timeout":
            reply["status"], reply["error"] = killed, f"wall clock exceeded {timeout:g} s"
        elif killed:
            reply["status"], reply["error"] = killed, "stdout+stderr exceeded the output limit"
        elif signum == signal.SIGXCPU or (signum == signal.SIGKILL
                                          and usage.ru_utime + usage.ru_stime >= int(timeout) + 1):
            reply["status"], reply["error"] = "timeout", "CPU time limit exceeded"
        elif memory or (signum == signal.SIGKILL and memory_mb and rss_mb >= 0.8 * memory_mb):
            reply["status"], reply["error"] = "memory", why or f"killed at {rss_mb:.0f} MB"
        elif done:
            ok = passed == reply["tests_total"] > 0
            reply["status"] = "passed" if ok else "failed"
            reply["error"] = "" if ok else (why or "no tests")
        elif signum:
            try:
                name = signal.Signals(signum).name
            except ValueError:
                name = f"signal {signum}"
            reply["status"], reply["error"] = "crashed", f"killed by {name}"
        elif solution is False:
            reply["status"], reply["error"] = "error", why
        else:
            code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1
            stage = "the solution" if solution is None else f"test {expected}"
            reply["status"] = "error"
            reply["error"] = f"job process exited with code {code} during {stage}"

    def health(self) -> tuple[bool, str]:
        self._reap()
        survivors = self._survivors()
        if survivors:
            return False, f"{len(survivors)} leftover processes"
        dirty = [p for p in [*self.scratch, self.workdir]
                 if os.path.isdir(p) and os.listdir(p) not in ([], ["job"])]
        if dirty:
            return False, f"scratch not empty: {', '.join(dirty)}"
        return True, "ok"


def _reply(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main(argv: list[str]) -> int:
    mode, root = "sandbox", "/work"
    args = list(argv)
    while args:
        flag = args.pop(0)
        if flag == "--mode" and args:
            mode = args.pop(0)
        elif flag == "--root" and args:
            root = args.pop(0)
        else:
            print(f"runner: unknown argument {flag!r}", file=sys.stderr)
            return 2
    if mode not in ("sandbox", "local"):
        print(f"runner: --mode must be sandbox or local, not {mode!r}", file=sys.stderr)
        return 2
    # Blocked, not ignored: `kill 1` (forwarded by the init) or a job's SIGTERM cannot stop
    # the runner, and the child only has to clear its mask (one call) to behave normally.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT, signal.SIGHUP,
                                              signal.SIGUSR1, signal.SIGUSR2, signal.SIGQUIT})
    for name in PRELOAD:
        try:
            __import__(name)
        except ImportError:
            pass
    os.umask(0o077)
    gc.freeze()  # forked jobs then do not copy the pages that the collector would touch
    runner = Runner(mode, root)
    _reply({"hello": "genetic-instruct-runner", "protocol": PROTOCOL, "mode": mode,
            "python": sys.version.split()[0], "pid": runner.pid})
    stdin = sys.stdin.buffer
    while True:
        line = stdin.readline()
        if not line:
            break
        try:
            msg = json.loads(line)
        except ValueError:
            _reply({"error": "bad request: not JSON"})
            continue
        op = msg.get("op", "run")
        if op == "exit":
            break
        if op == "ping":
            ok, detail = runner.health()
            # cpu_s: what the runner and every job it reaped have used (for benchmarks).
            _reply({"nonce": msg.get("nonce"), "ok": ok, "detail": detail,
                    "cpu_s": round(sum(os.times()[:4]), 4)})
        elif op == "run":
            _reply({**runner.safe_run(msg), "nonce": msg.get("nonce")})
        elif op == "batch":
            jobs, results = msg.get("jobs") or [], []
            # Everything that can be done for the whole batch is done before the first fork:
            # after each fork, every page the runner writes to costs it a page fault.
            compiled = [[_compile_test(str(t)) for t in job.get("tests") or []] for job in jobs]
            for job, tests in zip(jobs, compiled):
                results.append(runner.safe_run(job, tests))
                if results[-1]["status"] in ANOMALIES or results[-1]["leftovers"]:
                    break  # the client runs the rest in a fresh sandbox
            _reply({"nonce": msg.get("nonce"), "results": results})
        else:
            _reply({"nonce": msg.get("nonce"), "error": f"unknown op {op!r}"})
    runner.sweep()
    if mode == "local":
        _wipe(root)
        os.rmdir(root)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
