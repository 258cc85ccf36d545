"""``python -m airssys``: the main job (the supervisor demo, see README; it takes
``--strategy``); with a command, the ``airssys`` command line
(``python -m airssys serve DEPLOYMENT.toml``)."""

from __future__ import annotations

import sys

if __name__ == "__main__":
    args = sys.argv[1:]
    if args and not args[0].startswith("--strategy"):
        from .cli import main as cli

        cli()
    else:
        from ._demo import main

        sys.exit(main(args))
