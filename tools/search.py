#!/usr/bin/env python
"""`litepose search` (litepose.commands.search), under the release's script name: same arguments, same exit status."""
from litepose.commands.search import main
from litepose.cli import run_cli

if __name__ == "__main__":
    run_cli(main)
