#!/usr/bin/env python
"""`litepose calibrate-bn` (litepose.commands.calibrate_bn), under the release's script name: same arguments, same exit status."""
from litepose.commands.calibrate_bn import main
from litepose.cli import run_cli

if __name__ == "__main__":
    run_cli(main)
