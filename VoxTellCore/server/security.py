"""API keys: where they come from, how they are compared, and when one is required."""

from __future__ import annotations

import hmac
import ipaddress
import os
import socket
from pathlib import Path
from typing import Optional

from VoxTellCore.errors import InputError

KEY_ENVIRONMENT = "VOXTELL_API_KEY"


def load_api_key(key: Optional[str], key_file: Optional[str]) -> Optional[str]:
    """``--api-key-file`` (first line), else ``$VOXTELL_API_KEY``, else ``--api-key`` (kept for voxtell-server's
    users; every user of the machine sees it in ``ps``)."""
    if key_file:
        try:
            text = Path(key_file).read_text(encoding="utf-8").strip()
        except OSError as error:
            raise InputError(f"Cannot read --api-key-file {key_file}: {error.strerror}.") from None
        if not text:
            raise InputError(f"--api-key-file {key_file} is empty: write the key on its first line.")
        return text.splitlines()[0].strip()
    return os.environ.get(KEY_ENVIRONMENT) or key or None


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and names that resolve only to them (``localhost``)."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    return bool(addresses) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses)


def check_exposure(host: str, api_key: Optional[str], insecure: bool) -> Optional[str]:
    """InputError when a non-loopback address would serve without a key; a warning when --insecure allows it."""
    if api_key or is_loopback(host):
        return None
    if not insecure:
        raise InputError(f"Refusing to listen on {host} without an API key: anyone who can reach this port could "
                         f"use the server. Set {KEY_ENVIRONMENT} or pass --api-key-file FILE (or listen on 127.0.0.1 "
                         "and use an SSH tunnel; --insecure serves without a key anyway).")
    return f"WARNING: serving on {host} without an API key (--insecure): anyone who can reach the port can use it."


def key_matches(authorization: Optional[str], api_key: str) -> bool:
    """Constant-time comparison of an ``Authorization: Bearer KEY`` header with the key."""
    return hmac.compare_digest((authorization or "").encode("utf-8"), f"Bearer {api_key}".encode("utf-8"))
