"""``voxtell-core serve``: the VoxTell server for many Slicer workstations (and voxtell-server's clients).

Flags shared with the release's ``voxtell-server`` keep their names. The key comes from
``--api-key-file`` or ``$VOXTELL_API_KEY`` (``--api-key`` still works, but every user of the
machine sees it in ``ps``); without one the server only listens on a loopback address.
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from VoxTellCore.errors import InputError
from VoxTellCore.server.limits import GB, Limits


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("serve", help="serve VoxTell over HTTP (Slicer's remote mode, voxtell-server clients)",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-m", "--model", help="model folder or 'demo'; default $VOXTELL_MODEL, else the official download")
    parser.add_argument("--embeddings", help="precomputed text-embedding bank (.npz)")
    parser.add_argument("--no-precomputed", action="store_true", help="ignore the model's own or published bank")
    parser.add_argument("--text-encoder", help="Hugging Face id or local folder of the Qwen3 text encoder")
    parser.add_argument("--device", default="auto",
                        help="auto, cpu, cuda, cuda:N, mps; a comma list (cuda:0,cuda:1) runs one worker per device")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=1527, help="port (default 1527, as voxtell-server)")
    parser.add_argument("--api-key", help="the key clients must send (visible in ps: prefer --api-key-file or "
                                          "$VOXTELL_API_KEY)")
    parser.add_argument("--api-key-file", help="file whose first line is the key")
    parser.add_argument("--insecure", action="store_true", help="allow a non-loopback --host without a key")
    parser.add_argument("--ssl-certfile", help="TLS certificate (PEM); serve https")
    parser.add_argument("--ssl-keyfile", help="TLS private key (PEM)")
    defaults = Limits()
    parser.add_argument("--max-images", type=int, default=defaults.max_images, help="images kept at once")
    parser.add_argument("--max-upload-gb", type=float, default=defaults.max_upload_bytes / GB, help="one upload's size")
    parser.add_argument("--max-image-gb", type=float, default=defaults.max_image_bytes / GB,
                        help="one decoded image's size (as float32)")
    parser.add_argument("--max-queued", type=int, default=defaults.max_queued_jobs, help="jobs waiting at once")
    parser.add_argument("--idle-minutes", type=float, default=defaults.idle_seconds / 60,
                        help="forget images and results untouched this long")
    parser.add_argument("--feature-cache-gb", type=float,
                        help="encoder features kept per device for re-prompts (default: half its free memory)")
    return parser


def parse_devices(value: str) -> List[str]:
    devices = [name.strip() for name in value.split(",") if name.strip()]
    if not devices:
        raise InputError("--device is empty: give a device, or a comma list such as cuda:0,cuda:1.")
    return devices


def limits_of(args: argparse.Namespace) -> Limits:
    cache = None if args.feature_cache_gb is None else int(args.feature_cache_gb * GB)
    return Limits(max_upload_bytes=int(args.max_upload_gb * GB), max_image_bytes=int(args.max_image_gb * GB),
                  max_images=args.max_images, max_queued_jobs=args.max_queued, idle_seconds=args.idle_minutes * 60,
                  feature_cache_bytes=cache)


def feature_budget(predictors: list, configured: Optional[int]) -> int:
    """Bytes of encoder features each worker keeps: as configured, else half the smallest device's
    free memory, shared by the workers on one device."""
    if configured is not None:
        return configured
    from VoxTellCore.memory import free_memory_bytes
    from VoxTellCore.inference.sliding_window import FEATURE_CACHE_FRACTION

    devices = [p.device for p in predictors]
    return min(int(FEATURE_CACHE_FRACTION * free_memory_bytes(d) / devices.count(d)) for d in devices)


def run(args: argparse.Namespace) -> int:
    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError as error:
        raise InputError(f"The server needs the 'server' extra ({error.name} is missing): "
                         "bash scripts/setup.sh --server, or pip install 'voxtell-slicer[server]'.") from None

    from VoxTellCore.inference.predictor import VoxTellPredictor
    from VoxTellCore.server.app import make_app
    from VoxTellCore.server.images import ImageStore
    from VoxTellCore.server.jobs import Scheduler
    from VoxTellCore.server.security import check_exposure, load_api_key

    api_key = load_api_key(args.api_key, args.api_key_file)
    warning = check_exposure(args.host, api_key, args.insecure)
    if bool(args.ssl_certfile) != bool(args.ssl_keyfile):
        raise InputError("TLS needs both --ssl-certfile and --ssl-keyfile.")
    limits = limits_of(args)
    devices = parse_devices(args.device)
    predictors = []
    for device in devices:
        print(f"Loading the model on {device} ...", file=sys.stderr)
        predictors.append(VoxTellPredictor(model=args.model, device=device, text_encoder=args.text_encoder,
                                           embedding_bank=args.embeddings, use_model_bank=not args.no_precomputed,
                                           keep_text_encoder_loaded=True))
    store = ImageStore(limits.max_images, limits.max_total_image_bytes, limits.idle_seconds,
                       feature_budget(predictors, limits.feature_cache_bytes), workers=len(predictors))
    scheduler = Scheduler(predictors, store, limits.max_queued_jobs)
    scheduler.start()
    if warning:
        print(warning, file=sys.stderr)
    if predictors[0].is_demo:
        print(f"Model: {predictors[0].description}", file=sys.stderr)
    scheme = "https" if args.ssl_certfile else "http"
    print(f"Serving {predictors[0].description} on {scheme}://{args.host}:{args.port} "
          f"({len(predictors)} worker(s): {', '.join(devices)})", file=sys.stderr)
    try:
        uvicorn.run(make_app(scheduler, store, limits, api_key), host=args.host, port=args.port,
                    ssl_certfile=args.ssl_certfile, ssl_keyfile=args.ssl_keyfile, log_level="warning")
    finally:
        scheduler.stop()
    return 0
