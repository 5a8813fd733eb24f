"""Abusive programs and the outcome the sandbox must give each.

Each program is a job (solution + asserts). ``expect`` is the set of statuses that are
right; ``sandbox_only`` programs escape-test the isolation and are not run on the local
executor (which is no sandbox: there they would reach the host). ``then`` is a job that
must pass in the same sandbox right after (for example: the files the program left are
gone). Network probes never send a packet where a network exists: they check first that
only the loopback interface is visible and report "escaped" without connecting otherwise.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field

OK = "def f():\n    return 1\n"
OK_TESTS = ["assert f() == 1"]
HOST_SECRET_VALUE = "s3cr3t-5d41402abc4b2a76"  # sandbox_helpers puts it in our environment
NOT_PASSED = {"failed", "error", "timeout", "memory", "output_limit", "crashed"}


def code(text: str) -> str:
    """A program written indented in this file, as Python source."""
    return textwrap.dedent(text).lstrip("\n")


@dataclass
class Hostile:
    id: str
    solution: str
    tests: list[str] = field(default_factory=lambda: list(OK_TESTS))
    expect: set[str] = field(default_factory=lambda: {"failed"})
    sandbox_only: bool = False
    timeout_s: float = 2.0
    then: tuple[str, list[str]] | None = None


# The probe every network program uses: escaping means a non-loopback interface exists or a
# connection was made. Without such an interface connect() fails at once: nothing is sent.
NET = '''import socket
def escaped(host, port, kind=socket.SOCK_STREAM):
    if [name for _, name in socket.if_nameindex() if name != "lo"]:
        return True
    try:
        with socket.socket(socket.AF_INET, kind) as s:
            s.settimeout(1)
            s.connect((host, port))
            if kind == socket.SOCK_DGRAM:
                s.send(b"x")
                s.recv(1)
        return True
    except OSError:
        return False
'''

HERE_EMPTY = ("import os\n", ["assert os.listdir('.') == []"])
GONE = ("import os, glob\n"
        "def leftovers():\n"
        "    return [p for pattern in ('/tmp/*', '/dev/shm/*', '/work/*', './*', '/work/job/*')\n"
        "            for p in glob.glob(pattern) if not p.endswith('/work/job')]\n")

PROGRAMS = [
    # --- time
    Hostile("infinite-loop", code(r"""
        while True:
            pass
    """), expect={"timeout"}),
    Hostile("huge-computation", "x = 10 ** (10 ** 9)\n", expect={"memory", "timeout"}),
    Hostile("c-level-loop", "sum(range(10 ** 15))\n", expect={"timeout"}),
    Hostile("sleep-forever", code(r"""
        import time
        time.sleep(10 ** 6)
    """), expect={"timeout"}),
    Hostile("ignore-signals", code(r"""
        import signal
        for s in (signal.SIGALRM, signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGXCPU):
            signal.signal(s, signal.SIG_IGN)
        signal.alarm(0)
        while True:
            pass
    """), expect={"timeout"}),
    Hostile("catch-everything-loop", code(r"""
        while True:
            try:
                while True:
                    pass
            except BaseException:
                pass
    """), expect={"timeout"}),
    Hostile("raise-cpu-limit", code(r"""
        import resource
        try:
            unlimited = (resource.RLIM_INFINITY, resource.RLIM_INFINITY)
            resource.setrlimit(resource.RLIMIT_CPU, unlimited)
        except ValueError:
            pass
        while True:
            pass
    """), expect={"timeout"}),
    Hostile("loop-inside-test", code(r"""
        def f():
            while True:
                pass
    """), expect={"timeout"}),
    # --- processes
    Hostile("fork-bomb", code(r"""
        import os
        while True:
            try:
                os.fork()
            except OSError:
                pass
    """), expect={"timeout"}, sandbox_only=True),
    Hostile("thread-bomb", code(r"""
        import threading, time
        while True:
            threading.Thread(target=time.sleep, args=(100,), daemon=True).start()
    """), expect={"error", "memory"}),
    Hostile("multiprocessing-bomb", code(r"""
        import multiprocessing as mp
        def spin(_):
            while True:
                pass
        with mp.Pool(32) as pool:
            pool.map(spin, range(64))
    """), expect={"timeout"}, sandbox_only=True),
    Hostile("detached-child", code(r"""
        import subprocess, sys
        subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(1000)'],
                         start_new_session=True, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    """) + OK, expect={"passed"}),
    Hostile("double-fork-daemon", code(r"""
        import os, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.closerange(0, 64)
                while True:
                    with open('daemon-was-here', 'a') as out:
                        out.write('x')
                    time.sleep(0.01)
            os._exit(0)
        time.sleep(0.1)
    """) + OK, expect={"passed"}, then=(code(r"""
        import os, time
        time.sleep(0.3)
    """), ["assert not os.path.exists('daemon-was-here')"])),
    Hostile("daemon-holds-output-pipe", code(r"""
        import os, sys, time
        if os.fork() == 0:
            os.setsid()
            while True:
                print('still here', flush=True)
                time.sleep(0.05)
    """) + OK, expect={"passed"}),
    Hostile("zombie-army", code(r"""
        import os
        for _ in range(50):
            if os.fork() == 0:
                os._exit(0)
    """) + OK, expect={"passed"}),
    Hostile("kill-minus-one", code(r"""
        import os, signal
        os.kill(-1, signal.SIGKILL)
    """) + OK, expect={"crashed"}, sandbox_only=True),
    Hostile("kill-init", code(r"""
        import os, signal
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.kill(1, sig)
            except OSError:
                pass
    """) + OK, expect={"passed"}, sandbox_only=True),
    Hostile("kill-runner", code(r"""
        import os, signal
        os.kill(os.getppid(), signal.SIGKILL)
    """) + OK, expect={"crashed"}),
    Hostile("stop-runner", code(r"""
        import os, signal
        os.kill(os.getppid(), signal.SIGSTOP)
    """) + OK, expect={"timeout"}),
    Hostile("kill-self", code(r"""
        import os, signal
        os.kill(os.getpid(), signal.SIGKILL)
    """), expect={"crashed"}),
    # --- memory and the C stack
    Hostile("memory-bomb-fast", "x = bytearray(64 * 1024 ** 3)\n", expect={"memory"}),
    Hostile("memory-bomb-slow", code(r"""
        import time
        heap = []
        while True:
            heap.append(bytearray(8 << 20))
            time.sleep(0.005)
    """), expect={"memory"}, timeout_s=4),
    Hostile("memory-bomb-in-children", code(r"""
        import os
        kids = []
        for _ in range(12):
            pid = os.fork()
            if pid == 0:
                try:
                    b = bytearray(400 << 20)
                    b[::4096] = b'x' * len(b[::4096])
                finally:
                    os._exit(0)
            kids.append(pid)
        for pid in kids:
            os.waitpid(pid, 0)
        x = bytearray(10 ** 12)
    """), expect={"crashed", "memory", "timeout"}, sandbox_only=True, timeout_s=5),
    Hostile("deep-recursion", code(r"""
        import sys
        sys.setrecursionlimit(10 ** 7)
        def down(n):
            return down(n + 1) + 1
        down(0)
    """), expect={"crashed", "error", "memory", "timeout"}),
    Hostile("ctypes-null-read", code(r"""
        import ctypes
        ctypes.string_at(0)
    """), expect={"crashed"}),
    # --- files
    Hostile("fill-workdir", code(r"""
        i = 0
        while True:
            with open(f'junk{i}', 'wb') as out:
                out.write(b'x' * (8 << 20))
            i += 1
    """), expect={"error"}, sandbox_only=True, then=(GONE, ["assert leftovers() == []"])),
    Hostile("fill-tmp", code(r"""
        i = 0
        while True:
            with open(f'/tmp/junk{i}', 'wb') as out:
                out.write(b'x' * (8 << 20))
            i += 1
    """), expect={"error"}, sandbox_only=True, then=(GONE, ["assert leftovers() == []"])),
    Hostile("fill-dev-shm", code(r"""
        i = 0
        while True:
            with open(f'/dev/shm/junk{i}', 'wb') as out:
                out.write(b'x' * (4 << 20))
            i += 1
    """), expect={"error"}, sandbox_only=True, then=(GONE, ["assert leftovers() == []"])),
    Hostile("file-over-size-limit", code(r"""
        with open('big', 'wb') as out:
            out.write(b'x' * (200 << 20))
    """), expect={"error", "memory"}, then=HERE_EMPTY),
    Hostile("many-files", code(r"""
        import os
        for i in range(5000):
            open(f'/tmp/f{i}', 'w').close()
    """) + OK,
            expect={"passed"}, sandbox_only=True, timeout_s=10,
            then=(GONE, ["assert leftovers() == []"])),
    Hostile("leave-secrets-for-the-next-job", code(r"""
        import os
        for d in ('/tmp', '/dev/shm', '.'):
            with open(os.path.join(d, 'note'), 'w') as out:
                out.write('hi')
        os.makedirs('locked/deeper')
        os.chmod('locked', 0)
    """) + OK, expect={"passed"}, sandbox_only=True, then=(GONE, ["assert leftovers() == []"])),
    Hostile("unwritable-workdir", code(r"""
        import os
        os.chmod('.', 0o500)
    """) + OK,
            expect={"passed"},
            then=("open('probe', 'w').write('ok')\n", ["assert open('probe').read() == 'ok'"])),
    # --- output
    Hostile("stdout-flood", code(r"""
        while True:
            print('x' * 4096)
    """), expect={"output_limit"}),
    Hostile("stderr-flood", code(r"""
        import sys
        while True:
            sys.stderr.write('y' * 4096)
    """), expect={"output_limit"}),
    Hostile("raw-fd-flood", code(r"""
        import os
        while True:
            os.write(1, b'z' * 65536)
    """), expect={"output_limit"}),
    Hostile("invalid-utf8", code(r"""
        import sys
        sys.stdout.buffer.write(b'\xff\xfe\xfa\x80' * 64)
        sys.stdout.flush()
    """) + OK, expect={"passed"}),
    # --- network
    Hostile("net-public-ip", NET, tests=["assert escaped('1.1.1.1', 53)"], sandbox_only=True),
    Hostile("net-dns", NET + code(r"""
        def resolves():
            if [n for _, n in socket.if_nameindex() if n != 'lo']:
                return True
            try:
                socket.getaddrinfo('example.com', 80)
                return True
            except OSError:
                return False
    """), tests=["assert resolves()"], sandbox_only=True),
    Hostile("net-docker-gateway", NET,
            tests=["assert escaped('172.17.0.1', 2375)"], sandbox_only=True),
    Hostile("net-metadata", NET,
            tests=["assert escaped('169.254.169.254', 80)"], sandbox_only=True),
    Hostile("net-udp", NET,
            tests=["assert escaped('8.8.8.8', 53, socket.SOCK_DGRAM)"], sandbox_only=True),
    Hostile("docker-socket", code(r"""
        import socket
        def reach():
            for path in ('/var/run/docker.sock', '/run/docker.sock',
                         '/run/containerd/containerd.sock'):
                try:
                    socket.socket(socket.AF_UNIX).connect(path)
                    return True
                except OSError:
                    pass
            return False
    """), tests=["assert reach()"], sandbox_only=True),
    # --- secrets and the host
    Hostile("host-environment", "import os\n",
            tests=["assert 's3cr3t-5d41402abc4b2a76' in str(dict(os.environ))"]),
    Hostile("host-environ-of-others", code(r"""
        import glob
        def found():
            for path in glob.glob('/proc/*/environ'):
                try:
                    if b's3cr3t-5d41402abc4b2a76' in open(path, 'rb').read():
                        return True
                except OSError:
                    pass
            return False
    """), tests=["assert found()"], sandbox_only=True),
    Hostile("host-files", "import os\n",
            tests=["assert os.path.exists('/work/main/pyproject.toml') or os.path.exists('/root')"
                   " and bool(os.listdir('/root'))", "assert open('/etc/shadow').read()"],
            sandbox_only=True),
    Hostile("runner-channels", code(r"""
        import os
        def grab():
            for fd in (0, 1):
                try:
                    os.open(f'/proc/{os.getppid()}/fd/{fd}', os.O_WRONLY if fd else os.O_RDONLY)
                    return True
                except OSError:
                    pass
            return False
    """), tests=["assert grab()"], sandbox_only=True),
    Hostile("write-site-packages", code(r"""
        import site, sysconfig
        def plant():
            for d in {*site.getsitepackages(), sysconfig.get_paths()['purelib'],
                      sysconfig.get_paths()['stdlib']}:
                try:
                    open(d + '/sitecustomize.py', 'a').close()
                    return True
                except OSError:
                    pass
            return False
    """), tests=["assert plant()"], sandbox_only=True),
    Hostile("write-etc", code(r"""
        def plant():
            try:
                open('/etc/evil', 'w').write('x')
                return True
            except OSError:
                return False
    """), tests=["assert plant()"], sandbox_only=True),
    # --- score gaming
    Hostile("exit-zero-before-tests", code(r"""
        import sys
        sys.exit(0)
    """), expect={"error"}),
    Hostile("os-exit-zero-before-tests", code(r"""
        import os
        os._exit(0)
    """), expect={"error"}),
    Hostile("exit-inside-test", code(r"""
        import os
        def f():
            os._exit(0)
    """), expect={"error"}),
    Hostile("fake-success-line", code(r"""
        print('{"status": "passed", "tests_passed": 1, "tests_total": 1}')
        print('PASSED 1/1')
        def f():
            return 2
    """)),
    Hostile("forge-report-pipe", code(r"""
        import os
        for fd in range(3, 20):
            try:
                os.write(fd, b'deadbeef sol ok\ndeadbeef test 0 1\ndeadbeef done\n')
            except OSError:
                pass
        def f():
            return 2
    """)),
    Hostile("patch-assertion-error", code(r"""
        import builtins
        class Never(Exception):
            pass
        builtins.AssertionError = Never
        def f():
            return 2
    """)),
    Hostile("patch-builtins", code(r"""
        import builtins
        builtins.len = lambda x: 3
        builtins.sorted = lambda x: [1, 2, 3]
        def f():
            return [3, 2]
    """), tests=["assert len(f()) == 3", "assert sorted(f()) == [1, 2, 3]"]),
    Hostile("patch-builtins-during-test", code(r"""
        import builtins
        def f():
            builtins.int = lambda *a: 1
            builtins.str = lambda *a: '1'
            builtins.bool = lambda *a: True
            builtins.type = lambda *a: int
            builtins.isinstance = lambda *a: True
            builtins.map = lambda f, xs: ['1' for _ in xs]
            return 2
    """), tests=["assert f() == 1", "assert f() == 1", "assert str(f()) == '1'"]),
    Hostile("eq-always-true", code(r"""
        class Yes:
            def __eq__(self, other):
                return True
            __hash__ = None
        def f():
            return Yes()
    """), tests=["assert f() == 1", "assert f() in [1]"]),
    Hostile("mock-any", code(r"""
        from unittest.mock import ANY
        def f():
            return ANY
    """), tests=["assert f() == 1", "assert [f()] == [1]", "assert f() == {'a': [1, 2]}"]),
    Hostile("str-subclass-eq", code(r"""
        class S(str):
            def __eq__(self, other):
                return True
            __hash__ = str.__hash__
        def f():
            return S('no')
    """), tests=["assert f() == 'yes'"]),
    Hostile("ne-always-false", code(r"""
        class No:
            def __ne__(self, other):
                return False
            def __eq__(self, other):
                return True
        def f():
            return No()
    """), tests=["assert not (f() != 1)", "assert f() == 1"]),
    Hostile("redefine-in-tests", code(r"""
        def f():
            return 2
    """), tests=["def f():\n    return 1", "assert f() == 1"]),
    Hostile("walrus-in-test", code(r"""
        def f():
            return 2
    """), tests=["assert (f := lambda: 1)() == 1 and f() == 1"]),
    Hostile("import-main-runner", code(r"""
        import __main__
        def f():
            return 2
    """), tests=["assert not hasattr(__main__, 'Runner') and f() == 2"], expect={"passed"}),
    Hostile("input-without-stdin", "name = input()\n" + OK, expect={"error"}),
    Hostile("keyboard-interrupt", "raise KeyboardInterrupt\n", expect={"error"}),
    Hostile("close-all-fds", code(r"""
        import os
        os.closerange(0, 1024)
    """) + OK, expect={"error"}),
]
