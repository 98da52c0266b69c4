"""Shared plumbing of the command-line scripts: argument conventions and error exits.

Scripts stay thin: they parse arguments here, call the library, and let ``run_cli``
turn a ``LitePoseError`` into one line on stderr and a non-zero exit code.
"""

import argparse
import os
import sys

from ..errors import LitePoseError

# OpenCV reads its decoder's pixel limit once, when it is loaded: scripts (which import this
# module before anything imports cv2) set it to the project's image limit
# (litepose.data.image_header) unless the user set it, so that formats whose header the project
# does not parse meet the same limit while they are decoded.
_limit = os.environ.get("LITEPOSE_MAX_IMAGE_PIXELS", "").strip()
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", _limit if _limit.isdigit() and int(_limit) > 0 else str(2**26))

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


class DefaultsShown(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` shows each option's default, except where there is none or the help says it."""

    def _get_help_string(self, action):
        if action.default in (None, False, argparse.SUPPRESS) or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def run_cli(main, argv=None):
    """Run ``main(argv)``; exit 0, its return code, or 2 with one ``error:`` line."""
    try:
        code = main(argv)
    except LitePoseError as exc:
        # An interrupted run says "stopped:" and exits 128 + the signal number, as shells do.
        print(f"{getattr(exc, 'label', 'error')}: {exc}", file=sys.stderr)
        sys.exit(getattr(exc, "exit_code", EXIT_USER_ERROR))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(code or 0)


def config_parser(description, require_cfg=True, example="TEST.MODEL_FILE ckpt.pth"):
    """A parser with the release's conventions: ``--cfg FILE`` and trailing ``KEY VALUE``
    config overrides (``example`` shows one that applies to the script), which may be mixed
    with the script's own options."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--cfg", required=require_cfg, help="experiment config (YAML)")
    parser.add_argument("opts", nargs="*", default=[], metavar="KEY VALUE",
                        help=f"config overrides, e.g. {example}")
    return parser


def parse_args(parser, argv=None):
    """``parse_intermixed_args`` so options may follow the overrides."""
    return parser.parse_intermixed_args(argv)


def load_cli_config(args):
    from ..config import load_config

    return load_config(args.cfg, args.opts)
