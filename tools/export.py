#!/usr/bin/env python
"""`litepose export` (litepose.commands.export), under the release's script name: same arguments, same exit status."""
from litepose.commands.export import main
from litepose.cli import run_cli

if __name__ == "__main__":
    run_cli(main)
