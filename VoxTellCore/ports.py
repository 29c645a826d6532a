"""The one free-port probe: servers that tests, benchmarks and ``voxtell-web --sessions`` start on
this machine. Standard library only, so every environment imports it (the web app's .venv-web too)."""

import socket


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now, chosen by the operating system. Another process may take it
    before the caller binds it: bind soon, and let a failed start say so."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
