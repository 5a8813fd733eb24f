"""Abusive programs and the outcome the sandbox must give each.

Each program is a job (solution + asserts). ``expect`` is the set of statuses that are
right; ``sandbox_only`` programs escape-test the isolation and are not run on the local
executor (which is no sandbox: there they would reach the host). ``then`` is a job that
must pass in the same sandbox right after (for example: the files the program left are
gone). Network probes never send a packet where a network exists: they check first that
only the loopback interface is visible and report "escaped" without connecting otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

OK = "def f():\n    return 1\n"
OK_TESTS = ["assert f() == 1"]
HOST_SECRET_VALUE = "s3cr3t-5d41402abc4b2a76"  # sandbox_helpers puts it in our environment
NOT_PASSED = {"failed", "error", "timeout", "memory", "output_limit", "crashed"}


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
    Hostile("infinite-loop", "while True:\n    pass\n", expect={"timeout"}),
    Hostile("huge-computation", "x = 10 ** (10 ** 9)\n", expect={"timeout", "memory"}),
    Hostile("c-level-loop", "sum(range(10 ** 15))\n", expect={"timeout"}),
    Hostile("sleep-forever", "import time\ntime.sleep(10 ** 6)\n", expect={"timeout"}),
    Hostile("ignore-signals", "import signal\nfor s in (signal.SIGALRM, signal.SIGTERM, "
            "signal.SIGINT, signal.SIGHUP, signal.SIGXCPU):\n    signal.signal(s, signal.SIG_IGN)\n"
            "signal.alarm(0)\nwhile True:\n    pass\n", expect={"timeout"}),
    Hostile("catch-everything-loop", "while True:\n    try:\n        while True:\n            pass\n"
            "    except BaseException:\n        pass\n", expect={"timeout"}),
    Hostile("raise-cpu-limit", "import resource\ntry:\n    resource.setrlimit(resource.RLIMIT_CPU, "
            "(resource.RLIM_INFINITY, resource.RLIM_INFINITY))\nexcept ValueError:\n    pass\n"
            "while True:\n    pass\n", expect={"timeout"}),
    Hostile("loop-inside-test", "def f():\n    while True:\n        pass\n", expect={"timeout"}),
    # --- processes
    Hostile("fork-bomb", "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n"
            "        pass\n", expect={"timeout"}, sandbox_only=True),
    Hostile("thread-bomb", "import threading, time\nwhile True:\n    threading.Thread(target=time.sleep, "
            "args=(100,), daemon=True).start()\n", expect={"error", "memory"}),
    Hostile("multiprocessing-bomb", "import multiprocessing as mp\ndef spin(_):\n    while True:\n"
            "        pass\nwith mp.Pool(32) as pool:\n    pool.map(spin, range(64))\n",
            expect={"timeout"}, sandbox_only=True),
    Hostile("detached-child", "import subprocess, sys\nsubprocess.Popen([sys.executable, '-c', "
            "'import time; time.sleep(1000)'], start_new_session=True, stdin=subprocess.DEVNULL,\n"
            "                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n" + OK,
            expect={"passed"}),
    Hostile("double-fork-daemon", "import os, time\nif os.fork() == 0:\n    os.setsid()\n"
            "    if os.fork() == 0:\n        os.closerange(0, 64)\n        while True:\n"
            "            with open('daemon-was-here', 'a') as out:\n"
            "                out.write('x')\n            time.sleep(0.01)\n    os._exit(0)\n"
            "time.sleep(0.1)\n" + OK, expect={"passed"},
            then=("import os, time\ntime.sleep(0.3)\n", ["assert not os.path.exists('daemon-was-here')"])),
    Hostile("daemon-holds-output-pipe", "import os, sys, time\nif os.fork() == 0:\n    os.setsid()\n"
            "    while True:\n        print('still here', flush=True)\n        time.sleep(0.05)\n"
            + OK, expect={"passed"}),
    Hostile("zombie-army", "import os\nfor _ in range(50):\n    if os.fork() == 0:\n"
            "        os._exit(0)\n" + OK, expect={"passed"}),
    Hostile("kill-minus-one", "import os, signal\nos.kill(-1, signal.SIGKILL)\n" + OK,
            expect={"crashed"}, sandbox_only=True),
    Hostile("kill-init", "import os, signal\nfor sig in (signal.SIGTERM, signal.SIGKILL):\n    try:\n"
            "        os.kill(1, sig)\n    except OSError:\n        pass\n" + OK,
            expect={"passed"}, sandbox_only=True),
    Hostile("kill-runner", "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n" + OK,
            expect={"crashed"}),
    Hostile("stop-runner", "import os, signal\nos.kill(os.getppid(), signal.SIGSTOP)\n" + OK,
            expect={"timeout"}),
    Hostile("kill-self", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n",
            expect={"crashed"}),
    # --- memory and the C stack
    Hostile("memory-bomb-fast", "x = bytearray(64 * 1024 ** 3)\n", expect={"memory"}),
    Hostile("memory-bomb-slow", "import time\nheap = []\nwhile True:\n    heap.append(bytearray(8 << 20))\n"
            "    time.sleep(0.005)\n", expect={"memory"}, timeout_s=4),
    Hostile("memory-bomb-in-children", "import os\nkids = []\nfor _ in range(12):\n    pid = os.fork()\n"
            "    if pid == 0:\n        try:\n            b = bytearray(400 << 20)\n"
            "            b[::4096] = b'x' * len(b[::4096])\n        finally:\n            os._exit(0)\n"
            "    kids.append(pid)\nfor pid in kids:\n    os.waitpid(pid, 0)\nx = bytearray(10 ** 12)\n",
            expect={"memory", "crashed", "timeout"}, sandbox_only=True, timeout_s=5),
    Hostile("deep-recursion", "import sys\nsys.setrecursionlimit(10 ** 7)\ndef down(n):\n"
            "    return down(n + 1) + 1\ndown(0)\n", expect={"crashed", "error", "memory", "timeout"}),
    Hostile("ctypes-null-read", "import ctypes\nctypes.string_at(0)\n", expect={"crashed"}),
    # --- files
    Hostile("fill-workdir", "i = 0\nwhile True:\n    with open(f'junk{i}', 'wb') as out:\n"
            "        out.write(b'x' * (8 << 20))\n    i += 1\n", expect={"error"},
            sandbox_only=True, then=(GONE, ["assert leftovers() == []"])),
    Hostile("fill-tmp", "i = 0\nwhile True:\n    with open(f'/tmp/junk{i}', 'wb') as out:\n"
            "        out.write(b'x' * (8 << 20))\n    i += 1\n", expect={"error"},
            sandbox_only=True, then=(GONE, ["assert leftovers() == []"])),
    Hostile("fill-dev-shm", "i = 0\nwhile True:\n    with open(f'/dev/shm/junk{i}', 'wb') as out:\n"
            "        out.write(b'x' * (4 << 20))\n    i += 1\n", expect={"error"},
            sandbox_only=True, then=(GONE, ["assert leftovers() == []"])),
    Hostile("file-over-size-limit", "with open('big', 'wb') as out:\n    out.write(b'x' * (200 << 20))\n",
            expect={"error", "memory"}, then=HERE_EMPTY),
    Hostile("many-files", "import os\nfor i in range(5000):\n    open(f'/tmp/f{i}', 'w').close()\n"
            + OK, expect={"passed"}, sandbox_only=True, timeout_s=10,
            then=(GONE, ["assert leftovers() == []"])),
    Hostile("leave-secrets-for-the-next-job", "import os\nfor d in ('/tmp', '/dev/shm', '.'):\n"
            "    with open(os.path.join(d, 'note'), 'w') as out:\n        out.write('hi')\n"
            "os.makedirs('locked/deeper')\nos.chmod('locked', 0)\n" + OK, expect={"passed"},
            sandbox_only=True, then=(GONE, ["assert leftovers() == []"])),
    Hostile("unwritable-workdir", "import os\nos.chmod('.', 0o500)\n" + OK, expect={"passed"},
            then=("open('probe', 'w').write('ok')\n", ["assert open('probe').read() == 'ok'"])),
    # --- output
    Hostile("stdout-flood", "while True:\n    print('x' * 4096)\n", expect={"output_limit"}),
    Hostile("stderr-flood", "import sys\nwhile True:\n    sys.stderr.write('y' * 4096)\n",
            expect={"output_limit"}),
    Hostile("raw-fd-flood", "import os\nwhile True:\n    os.write(1, b'z' * 65536)\n",
            expect={"output_limit"}),
    Hostile("invalid-utf8", "import sys\nsys.stdout.buffer.write(b'\\xff\\xfe\\xfa\\x80' * 64)\n"
            "sys.stdout.flush()\n" + OK, expect={"passed"}),
    # --- network
    Hostile("net-public-ip", NET, ["assert escaped('1.1.1.1', 53)"], sandbox_only=True),
    Hostile("net-dns", NET + "def resolves():\n    if [n for _, n in socket.if_nameindex() if n != 'lo']:\n"
            "        return True\n    try:\n        socket.getaddrinfo('example.com', 80)\n"
            "        return True\n    except OSError:\n        return False\n",
            ["assert resolves()"], sandbox_only=True),
    Hostile("net-docker-gateway", NET, ["assert escaped('172.17.0.1', 2375)"], sandbox_only=True),
    Hostile("net-metadata", NET, ["assert escaped('169.254.169.254', 80)"], sandbox_only=True),
    Hostile("net-udp", NET, ["assert escaped('8.8.8.8', 53, socket.SOCK_DGRAM)"], sandbox_only=True),
    Hostile("docker-socket", "import socket\ndef reach():\n    for path in ('/var/run/docker.sock', "
            "'/run/docker.sock', '/run/containerd/containerd.sock'):\n        try:\n"
            "            socket.socket(socket.AF_UNIX).connect(path)\n            return True\n"
            "        except OSError:\n            pass\n    return False\n", ["assert reach()"],
            sandbox_only=True),
    # --- secrets and the host
    Hostile("host-environment", "import os\n", [f"assert '{HOST_SECRET_VALUE}' in str(dict(os.environ))"]),
    Hostile("host-environ-of-others", "import glob\ndef found():\n    for path in glob.glob('/proc/*/environ'):\n"
            "        try:\n            if b'" + HOST_SECRET_VALUE + "' in open(path, 'rb').read():\n"
            "                return True\n        except OSError:\n            pass\n    return False\n",
            ["assert found()"], sandbox_only=True),
    Hostile("host-files", "import os\n", ["assert os.path.exists('/work/main/pyproject.toml') or "
                                          "os.path.exists('/root') and bool(os.listdir('/root'))",
                                          "assert open('/etc/shadow').read()"], sandbox_only=True),
    Hostile("runner-channels", "import os\ndef grab():\n    for fd in (0, 1):\n        try:\n"
            "            os.open(f'/proc/{os.getppid()}/fd/{fd}', os.O_WRONLY if fd else os.O_RDONLY)\n"
            "            return True\n        except OSError:\n            pass\n    return False\n",
            ["assert grab()"], sandbox_only=True),
    Hostile("write-site-packages", "import site, sysconfig\ndef plant():\n"
            "    for d in {*site.getsitepackages(), sysconfig.get_paths()['purelib'],\n"
            "              sysconfig.get_paths()['stdlib']}:\n        try:\n"
            "            open(d + '/sitecustomize.py', 'a').close()\n            return True\n"
            "        except OSError:\n            pass\n    return False\n", ["assert plant()"],
            sandbox_only=True),
    Hostile("write-etc", "def plant():\n    try:\n        open('/etc/evil', 'w').write('x')\n"
            "        return True\n    except OSError:\n        return False\n", ["assert plant()"],
            sandbox_only=True),
    # --- score gaming
    Hostile("exit-zero-before-tests", "import sys\nsys.exit(0)\n", expect={"error"}),
    Hostile("os-exit-zero-before-tests", "import os\nos._exit(0)\n", expect={"error"}),
    Hostile("exit-inside-test", "import os\ndef f():\n    os._exit(0)\n", expect={"error"}),
    Hostile("fake-success-line", "print('{\"status\": \"passed\", \"tests_passed\": 1, \"tests_total\": 1}')\n"
            "print('PASSED 1/1')\ndef f():\n    return 2\n"),
    Hostile("forge-report-pipe", "import os\nfor fd in range(3, 20):\n    try:\n"
            "        os.write(fd, b'deadbeef sol ok\\ndeadbeef test 0 1\\ndeadbeef done\\n')\n"
            "    except OSError:\n        pass\ndef f():\n    return 2\n"),
    Hostile("patch-assertion-error", "import builtins\nclass Never(Exception):\n    pass\n"
            "builtins.AssertionError = Never\ndef f():\n    return 2\n"),
    Hostile("patch-builtins", "import builtins\nbuiltins.len = lambda x: 3\nbuiltins.sorted = lambda x: [1, 2, 3]\n"
            "def f():\n    return [3, 2]\n", ["assert len(f()) == 3", "assert sorted(f()) == [1, 2, 3]"]),
    Hostile("eq-always-true", "class Yes:\n    def __eq__(self, other):\n        return True\n"
            "    __hash__ = None\ndef f():\n    return Yes()\n", ["assert f() == 1", "assert f() in [1]"]),
    Hostile("mock-any", "from unittest.mock import ANY\ndef f():\n    return ANY\n",
            ["assert f() == 1", "assert [f()] == [1]", "assert f() == {'a': [1, 2]}"]),
    Hostile("str-subclass-eq", "class S(str):\n    def __eq__(self, other):\n        return True\n"
            "    __hash__ = str.__hash__\ndef f():\n    return S('no')\n", ["assert f() == 'yes'"]),
    Hostile("ne-always-false", "class No:\n    def __ne__(self, other):\n        return False\n"
            "    def __eq__(self, other):\n        return True\ndef f():\n    return No()\n",
            ["assert not (f() != 1)", "assert f() == 1"]),
    Hostile("redefine-in-tests", "def f():\n    return 2\n", ["def f():\n    return 1", "assert f() == 1"]),
    Hostile("walrus-in-test", "def f():\n    return 2\n", ["assert (f := lambda: 1)() == 1 and f() == 1"]),
    Hostile("import-main-runner", "import __main__\ndef f():\n    return 2\n",
            ["assert not hasattr(__main__, 'Runner') and f() == 2"], expect={"passed"}),
    Hostile("input-without-stdin", "name = input()\n" + OK, expect={"error"}),
    Hostile("keyboard-interrupt", "raise KeyboardInterrupt\n", expect={"error"}),
    Hostile("close-all-fds", "import os\nos.closerange(0, 1024)\n" + OK,
            expect={"error"}),
]
