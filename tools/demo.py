#!/usr/bin/env python
"""`litepose demo` (litepose.commands.demo), under the release's script name: same arguments, same exit status."""
from litepose.commands.demo import main
from litepose.cli import run_cli

if __name__ == "__main__":
    run_cli(main)
