"""``voxtell-web``: start the VoxTell web app and print its local URL.

    voxtell-web [-m demo|official|MODEL_DIR] [--device auto] [--host 127.0.0.1] [--port 8080]
                [--sessions N] [--idle-timeout S] [--server-url URL] [--api-key-file FILE]
                [--dicomweb URL] [--dicomweb-auth-file FILE]

Without ``--sessions`` one process serves one session (every tab on it shares the scene);
``--sessions N`` gives each browser user a process of their own, at most N (VoxTellWeb.launcher).
``--server-url`` (or $VOXTELL_SERVER_URL) computes on a VoxTell server, with the key of
``--api-key-file`` or $VOXTELL_API_KEY; the page never asks for either. ``--dicomweb`` (or
$VOXTELL_DICOMWEB_URL) lets the page open a series from that DICOMweb server and store the DICOM SEG
back, with the credentials of ``--dicomweb-auth-file`` or $VOXTELL_PACS_AUTH (user:password or 'Bearer TOKEN').
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

import VoxTellWeb  # noqa: F401  (puts the Slicer module's logic on the path)
from VoxTellSlicerLib.options import DEMO_MODEL
from VoxTellWeb.compute import SERVER_URL_ENVIRONMENT

DICOMWEB_URL_ENVIRONMENT = "VOXTELL_DICOMWEB_URL"

SESSION_IDLE_TIMEOUT_S = 60


def parser() -> argparse.ArgumentParser:
    result = argparse.ArgumentParser(prog="voxtell-web", description="VoxTell in the browser (trame-slicer).")
    result.add_argument("-m", "--model", default=DEMO_MODEL,
                        help="'demo' (default), 'official' (VoxTell v1.1, downloaded once) or a model folder")
    result.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    result.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    result.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    result.add_argument("--sessions", type=int, default=0,
                        help="one process per browser user, at most this many at once (beyond: a 'busy' page)")
    result.add_argument("--idle-timeout", type=int, default=None,
                        help=f"seconds without a connected page before a process stops (default: never; "
                             f"{SESSION_IDLE_TIMEOUT_S} with --sessions)")
    result.add_argument("--server-url", default=os.environ.get(SERVER_URL_ENVIRONMENT),
                        help=f"compute on this VoxTell server (voxtell-core serve; default ${SERVER_URL_ENVIRONMENT}) "
                             "instead of this machine")
    result.add_argument("--api-key-file", help="file whose first line is the server's key (default $VOXTELL_API_KEY)")
    result.add_argument("--dicomweb", default=os.environ.get(DICOMWEB_URL_ENVIRONMENT),
                        help=f"a DICOMweb server to open series from and store DICOM SEG to (default ${DICOMWEB_URL_ENVIRONMENT})")
    result.add_argument("--dicomweb-auth-file", help="file holding its user:password or 'Bearer TOKEN' "
                                                     "(default $VOXTELL_PACS_AUTH)")
    return result


def main(argv: Optional[List[str]] = None) -> int:
    args = parser().parse_args(argv)
    try:
        from trame.app import get_server
    except ImportError:
        print("voxtell-web: error: trame-slicer is not installed here. The web app has its own environment: "
              "bash scripts/setup.sh --web, then .venv-web/bin/voxtell-web", file=sys.stderr)
        return 2
    if args.model == DEMO_MODEL and not args.server_url:
        print("Model: demo model (synthetic training data, not for clinical images)", file=sys.stderr)
    if args.sessions:
        from VoxTellWeb.launcher import Launcher, serve

        idle = SESSION_IDLE_TIMEOUT_S if args.idle_timeout is None else args.idle_timeout
        passed = ["-m", args.model, "--device", args.device]
        if args.server_url:  # the key travels in the environment or its file, never on a command line
            passed += ["--server-url", args.server_url] + (["--api-key-file", args.api_key_file] if args.api_key_file else [])
        if args.dicomweb:
            passed += ["--dicomweb", args.dicomweb] + (["--dicomweb-auth-file", args.dicomweb_auth_file]
                                                       if args.dicomweb_auth_file else [])
        serve(Launcher(passed, args.sessions, args.host, idle), args.port)
        return 0
    from VoxTellCore.errors import InputError
    from VoxTellCore.server.security import load_api_key
    from VoxTellWeb.app import VoxTellWebApp
    from VoxTellWeb.compute import server_factory

    factory, dicomweb = None, None
    try:
        if args.server_url:
            factory = server_factory(args.server_url, load_api_key(None, args.api_key_file))
        if args.dicomweb:
            from VoxTellCore.pacs.auth import SOURCE_ENV, auth_headers
            from VoxTellCore.pacs.dicomweb import DicomWebServer

            dicomweb = DicomWebServer(args.dicomweb, auth_headers(args.dicomweb_auth_file, SOURCE_ENV))
    except InputError as error:  # PacsError is one
        print(f"voxtell-web: error: {error}", file=sys.stderr)
        return 2
    app = VoxTellWebApp(get_server("voxtell", client_type="vue3"), model=args.model, device=args.device,
                        predictor_factory=factory, compute=f"VoxTell server {args.server_url}" if factory else "",
                        dicomweb=dicomweb)
    app.server.start(host=args.host, port=args.port, open_browser=False, show_connection_info=True,
                     timeout=args.idle_timeout or 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
