"""The VoxTell server (``voxtell-core serve``): FastAPI app, image store, job queue, limits, keys."""
