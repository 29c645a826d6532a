"""A child process that can be followed and stopped: downloads and installs run this way,
because only a process can be interrupted in the middle of its work (a thread cannot)."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Sequence
from typing import Callable, List, Mapping, Optional


class ChildProcess:
    """Runs ``command`` with its output (stdout and stderr, UTF-8) read line by line by a
    thread: every line is kept in ``lines`` and passed to ``on_line``. Used as a context
    manager, the child is killed on the way out if it still runs (Cancel, timeout, error)."""

    def __init__(self, command: Sequence[str], env: Optional[Mapping[str, str]] = None,
                 on_line: Optional[Callable[[str], object]] = None, name: str = "child process output") -> None:
        self.lines: List[str] = []
        self._on_line = on_line
        self.process = subprocess.Popen(
            list(command),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=None if env is None else dict(env),
            encoding="utf-8",
            errors="replace",
            creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),  # no console window on Windows
        )
        self._reader = threading.Thread(target=self._read, name=name, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            line = line.rstrip("\r\n")
            self.lines.append(line)
            if self._on_line is not None:
                self._on_line(line)

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    @property
    def returncode(self) -> Optional[int]:
        return self.process.returncode

    def close(self) -> None:
        """Kill the child if it still runs, wait for it and for its last output lines."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._reader.join(5)

    def __enter__(self) -> ChildProcess:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
