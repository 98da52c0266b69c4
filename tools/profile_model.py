#!/usr/bin/env python
"""`litepose profile` (litepose.commands.profile), under the release's script name: same arguments, same exit status."""
from litepose.commands.profile import main
from litepose.cli import run_cli

if __name__ == "__main__":
    run_cli(main)
