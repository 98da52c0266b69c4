#!/usr/bin/env python
"""`litepose train` (litepose.commands.train), under the release's script name: same arguments, same exit status."""
from litepose.commands.train import main
from litepose.cli import run_cli

if __name__ == "__main__":
    run_cli(main)
