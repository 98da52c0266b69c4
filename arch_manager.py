#!/usr/bin/env python
"""`litepose arch` (litepose.commands.arch), under the release's script name: same arguments, same exit status."""
from litepose.commands.arch import main
from litepose.models.space import ArchManager, SearchSpace  # noqa: F401  (the release's classes, under its module name)
from litepose.cli import run_cli

if __name__ == "__main__":
    run_cli(main)
