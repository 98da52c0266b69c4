#!/usr/bin/env python
"""`litepose transfer` (litepose.commands.transfer), under the release's script name: same arguments, same exit status."""
from litepose.commands.transfer import main
from litepose.cli import run_cli

if __name__ == "__main__":
    run_cli(main)
