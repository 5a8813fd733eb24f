"""Start `genetic-instruct serve` in a subprocess for tests (port 0: the OS picks one)."""

from __future__ import annotations

import queue
import re
import subprocess
import tempfile
import threading

from conftest import CLI, cli_env

READY = re.compile(r"serving (\S+) on (http://\S+/v1)")


class ServeProcess:
    """A running server; ``url`` ends in /v1. ``stop()`` ends it (fixtures' teardown)."""

    def __init__(self, *args: str, timeout: float = 300):
        self.log = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen([*CLI, "serve", "--port", "0", *args],
                                     stdout=subprocess.PIPE, stderr=self.log, text=True,
                                     env=cli_env())
        lines: queue.Queue[str | None] = queue.Queue()

        def read() -> None:
            for line in self.proc.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=read, daemon=True).start()
        try:
            while True:
                line = lines.get(timeout=timeout)
                if line is None:
                    raise RuntimeError(f"serve exited ({self.proc.wait()}): {self.stderr()}")
                m = READY.search(line)
                if m:
                    self.model, self.url = m.group(1), m.group(2)
                    break
        except BaseException:
            self.stop()
            raise

    def stderr(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
