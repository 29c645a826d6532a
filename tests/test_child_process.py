"""ChildProcess ends the child's whole tree: a launcher child (like Slicer's PythonSlicer, which
starts python-real) that started a grandchild leaves nothing running after Cancel. Real processes."""

from __future__ import annotations

import os
import sys
import textwrap
import time

from VoxTellCore.child_process import ChildProcess

# A launcher: starts a long-running grandchild (sharing its output, as python-real does),
# says the grandchild's pid, then waits for it (or exits at once with "exit").
LAUNCHER = textwrap.dedent("""
    import subprocess, sys
    grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    print(grandchild.pid, flush=True)
    if sys.argv[1] == "wait":
        grandchild.wait()
""")


def running(pid: int) -> bool:
    """Alive and not a zombie waiting to be reaped."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def gone_within(pid: int, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not running(pid):
            return True
        time.sleep(0.05)
    return False


def grandchild_pid(process: ChildProcess) -> int:
    deadline = time.monotonic() + 30
    while not process.lines and time.monotonic() < deadline:
        time.sleep(0.02)
    return int(process.lines[0])


def start(mode: str) -> ChildProcess:
    return ChildProcess([sys.executable, "-c", LAUNCHER, mode])


def test_cancel_ends_the_child_and_its_grandchild():
    with start("wait") as process:
        grandchild = grandchild_pid(process)
        assert running(grandchild) and process.running
    assert not process.running
    assert gone_within(grandchild), f"grandchild {grandchild} still runs after the child was stopped"


def test_a_grandchild_left_by_an_exited_child_is_ended_too():
    with start("exit") as process:
        grandchild = grandchild_pid(process)
        process.process.wait(30)
        assert running(grandchild)
    assert gone_within(grandchild)


def test_a_finished_child_keeps_its_output_and_return_code():
    with ChildProcess([sys.executable, "-c", "print('done'); raise SystemExit(3)"]) as process:
        process.process.wait(30)
    assert process.lines == ["done"] and process.returncode == 3
