"""One module per ``voxtell-core`` subcommand: ``add_parser(subparsers)`` and ``run(args) -> int``."""
