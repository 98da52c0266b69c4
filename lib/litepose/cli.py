"""Shared plumbing of the command-line scripts: argument conventions and error exits.

Scripts stay thin: they parse arguments here, call the library, and let ``run_cli``
turn a ``LitePoseError`` into one line on stderr and a non-zero exit code.
"""

import argparse
import os
import sys

from .errors import LitePoseError

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


# ---------------------------------------------------------------------------- numeric options
# Every numeric option of every script is parsed by one of these (a test checks that no script
# uses a bare ``type=int`` / ``type=float``): a value outside its range, NaN or infinity is
# argparse's one line (``error: argument --threads: must be between 1 and 1024, got -1``,
# exit 2), before any work.
def _bounded(integer, low, high, above=None):
    from .utils.args import number_problem

    def parse(text):
        try:
            value = (int if integer else float)(str(text).strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'a whole number' if integer else 'a number'}, "
                                             f"got {text!r}") from None
        problem = number_problem(value, low, high, above=above, integer=integer)
        if problem:
            raise argparse.ArgumentTypeError(problem)
        return value

    parse.__name__ = "int" if integer else "float"
    return parse


def int_range(low=None, high=None):
    """An argparse ``type``: a whole number within ``[low, high]`` (None: no bound)."""
    return _bounded(True, low, high)


def number_range(low=None, high=None, *, above=None):
    """An argparse ``type``: a finite number within ``[low, high]``, or ``> above``."""
    return _bounded(False, low, high, above)


def input_size(text):
    """An argparse ``type`` for ``--input-size``: the one input-size rule
    (``litepose.utils.limits.input_size_problem``)."""
    from .utils.limits import input_size_problem

    value = int_range()(text)
    problem = input_size_problem(value, "")
    if problem:
        raise argparse.ArgumentTypeError(problem.strip())
    return value


def regex(text):
    """An argparse ``type``: a regular expression that compiles (returned as text)."""
    import re

    try:
        re.compile(text)
    except re.error as exc:
        raise argparse.ArgumentTypeError(f"not a regular expression: {exc} in {text!r}") from None
    return text


THREADS = int_range(1, 1024)           # CPU threads of a runtime
SEED = int_range(0, 2**32 - 1)          # NumPy's seed range (torch's is wider)
SCORE = number_range(0, 1)              # a joint or person score, an OKS
POSITIVE = int_range(1, None)           # counts with no natural upper bound (rounds, images of a dataset)
NON_NEGATIVE = int_range(0, None)


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
    from .config import load_config

    return load_config(args.cfg, args.opts)


def run_inputs(args, cfg=None, *paths):
    """The files a script's run reads (``--cfg``, ``--superconfig``, the config's model,
    pretrained, resume and architecture files, and ``paths``): what ``check_output_file(...,
    inputs=)`` keeps its outputs off, ``--force`` or not."""
    found = [getattr(args, "cfg", None), getattr(args, "superconfig", None)]
    if cfg is not None:
        found += [cfg.TEST.MODEL_FILE, cfg.MODEL.PRETRAINED, cfg.MODEL.ARCH, cfg.TRAIN.CHECKPOINT]
    found += list(paths)
    return [path for path in found if isinstance(path, (str, os.PathLike)) and str(path)]
