"""``voxtell-web``: start the VoxTell web app and print its local URL.

    voxtell-web [-m demo|official|MODEL_DIR] [--device auto] [--host 127.0.0.1] [--port 8080]
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

import VoxTellWeb  # noqa: F401  (puts the Slicer module's logic on the path)
from VoxTellSlicerLib.options import DEMO_MODEL


def parser() -> argparse.ArgumentParser:
    result = argparse.ArgumentParser(prog="voxtell-web", description="VoxTell in the browser (trame-slicer).")
    result.add_argument("-m", "--model", default=DEMO_MODEL,
                        help="'demo' (default), 'official' (VoxTell v1.1, downloaded once) or a model folder")
    result.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    result.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    result.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    return result


def main(argv: Optional[List[str]] = None) -> int:
    args = parser().parse_args(argv)
    try:
        from trame.app import get_server
    except ImportError:
        print("voxtell-web: error: trame-slicer is not installed here. The web app has its own environment: "
              "bash scripts/setup.sh --web, then .venv-web/bin/voxtell-web", file=sys.stderr)
        return 2

    from VoxTellWeb.app import VoxTellWebApp

    app = VoxTellWebApp(get_server("voxtell", client_type="vue3"), model=args.model, device=args.device)
    if args.model == DEMO_MODEL:
        print("Model: demo model (synthetic training data, not for clinical images)", file=sys.stderr)
    app.server.start(host=args.host, port=args.port, open_browser=False, show_connection_info=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
