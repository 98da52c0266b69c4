#!/usr/bin/env python
"""`litepose make-dataset` (litepose.commands.make_dataset), under the release's script name: same arguments, same exit status."""
from litepose.commands.make_dataset import main
from litepose.cli import run_cli

if __name__ == "__main__":
    run_cli(main)
