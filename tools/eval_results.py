#!/usr/bin/env python
"""`litepose eval-results` (litepose.commands.eval_results), under the release's script name: same arguments, same exit status."""
from litepose.commands.eval_results import main
from litepose.cli import run_cli

if __name__ == "__main__":
    run_cli(main)
