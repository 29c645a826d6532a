"""Credentials for a PACS, from an environment variable or a file (never argv, where
``ps`` and shell histories would show them).

The secret is ``user:password`` (HTTP basic) or ``Bearer TOKEN`` (a bearer token).
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Dict, Optional

from VoxTellCore.errors import InputError

SOURCE_ENV = "VOXTELL_PACS_AUTH"  # the --dicomweb server (and --store-to when it names none of its own)
TARGET_ENV = "VOXTELL_STORE_AUTH"  # the --store-to server


def auth_headers(file: Optional[str], env: str) -> Dict[str, str]:
    """The HTTP Authorization header for the secret in ``file`` or else ``$env``; {} without one."""
    if file:
        try:
            secret = Path(file).read_text(encoding="utf-8").strip()
        except OSError as error:
            raise InputError(f"Cannot read the credentials file {file} ({error.strerror}): pass a readable file "
                             "holding user:password or 'Bearer TOKEN'.") from error
        where = f"the credentials file {file}"
    else:
        secret = os.environ.get(env, "").strip()
        where = f"${env}"
    if not secret:
        return {}
    if secret.lower().startswith("bearer "):
        return {"Authorization": "Bearer " + secret[7:].strip()}
    if ":" not in secret:
        raise InputError(f"{where} holds neither user:password nor 'Bearer TOKEN'; write one of these.")
    return {"Authorization": "Basic " + base64.b64encode(secret.encode("utf-8")).decode("ascii")}
