"""A child process that can be followed and stopped: downloads and installs run this way,
because only a process can be interrupted in the middle of its work (a thread cannot).

Stopping ends the child's whole process tree: Slicer's ``PythonSlicer`` is a launcher that
starts ``python-real``, and pip starts builds, so killing the child alone would leave them
running (and the next Run would start a second download or install beside the first).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from typing import Callable, List, Mapping, Optional


class ChildProcess:
    """Runs ``command`` with its output (stdout and stderr, UTF-8) read line by line by a
    thread: every line is kept in ``lines`` and passed to ``on_line``. Used as a context
    manager, the child and everything it started are killed on the way out (Cancel, timeout,
    error): the child leads a new session (POSIX process group) or, on Windows, a new process
    group that ``taskkill /T`` ends as a tree."""

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
            # No console window on Windows, and a group of its own to end as a tree.
            creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0) | getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0),
            start_new_session=sys.platform != "win32",
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
        """Kill the child and what it started (if still running), wait for it and for its last output lines."""
        self.kill_tree()
        self.process.wait()
        self._reader.join(5)

    def kill_tree(self) -> None:
        if sys.platform == "win32":
            if self.process.poll() is None:
                subprocess.run(["taskkill", "/T", "/F", "/PID", str(self.process.pid)], capture_output=True,
                               creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0))
                self.process.kill()
            return
        try:  # the group outlives an exited leader while its children run
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):  # the group has ended
            pass

    def __enter__(self) -> ChildProcess:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
