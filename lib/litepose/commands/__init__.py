"""The ``litepose`` command: training, evaluation, search, export and the demo behind one name.

    litepose <command> [arguments]        litepose <command> --help
    python -m litepose <command> [arguments]

Each command is one module of this package whose ``main(argv)`` the release's scripts
(``dist_train.py``, ``valid.py``, ``weight_transfer.py``, ``arch_manager.py``) and ``tools/*.py``
also run: the same arguments, output and exit status (2 on bad input, 130 on Ctrl-C). The list
below is read from the modules' docstrings without importing them, so ``litepose --help`` loads
no PyTorch; a command's module is imported only when it runs.
"""

import ast
import difflib
import importlib
import importlib.util
import sys

# Command name -> module of this package, in the order ``litepose --help`` lists them.
COMMANDS = {
    "train": "train",
    "valid": "valid",
    "transfer": "transfer",
    "arch": "arch",
    "search": "search",
    "calibrate-bn": "calibrate_bn",
    "profile": "profile",
    "export": "export",
    "quantize": "quantize",
    "demo": "demo",
    "eval-results": "eval_results",
    "make-dataset": "make_dataset",
}

# Third-party packages a command may need beyond the PyTorch-free runtime, and the extra that
# installs each: a missing one is a one-line error naming the install command.
EXTRAS = {"torch": "train", "torchvision": "train", "tensorboard": "train", "pycocotools": "train",
          "matplotlib": "train", "onnx": "onnx", "onnxruntime": "onnx", "openvino": "openvino",
          "nncf": "export", "ncnn": "export", "pnnx": "export", "coremltools": "export"}


def summary(name):
    """The first line of command ``name``'s module docstring, read from its source (no import)."""
    spec = importlib.util.find_spec(f"{__name__}.{COMMANDS[name]}")
    with open(spec.origin, encoding="utf-8") as source:
        doc = ast.get_docstring(ast.parse(source.read())) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def usage():
    width = max(map(len, COMMANDS))
    lines = ["usage: litepose <command> [arguments]   (litepose <command> --help: the command's own)",
             "", "commands:"]
    lines += [f"  {name:<{width}}  {summary(name)}" for name in COMMANDS]
    lines += ["", "options:", "  -h, --help  show this list and exit", "  --version   show the version and exit"]
    return "\n".join(lines)


def _fail(message):
    print(f"litepose: error: {message}", file=sys.stderr)
    sys.exit(2)


def main(argv=None):
    """Run ``litepose ARGV`` (default ``sys.argv[1:]``); always ends in ``SystemExit`` with the
    command's exit status (``litepose.cli.run_cli``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        _fail("no command given; `litepose --help` lists them")
    name, rest = argv[0], argv[1:]
    if name in ("-h", "--help"):
        print(usage())
        sys.exit(0)
    if name == "--version":
        from .. import __version__

        print(f"litepose {__version__}")
        sys.exit(0)
    if name not in COMMANDS:
        close = difflib.get_close_matches(name, COMMANDS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        _fail(f"unknown command {name!r}; {hint}commands: {', '.join(COMMANDS)}")

    from ..cli import run_cli

    # argparse names the program after sys.argv[0]: usage lines read "litepose valid ...".
    program = sys.argv[0] if sys.argv else None
    if sys.argv:
        sys.argv[0] = f"litepose {name}"
    else:
        sys.argv.append(f"litepose {name}")
    try:
        module = importlib.import_module(f"{__name__}.{COMMANDS[name]}")
        run_cli(module.main, rest)
    except ModuleNotFoundError as exc:
        package = (exc.name or "").split(".")[0]
        if package not in EXTRAS:
            raise
        _fail(f"litepose {name} needs {package}, which is not installed: "
              f"pip install 'litepose[{EXTRAS[package]}]'")
    finally:
        if program is None:
            sys.argv.pop(0)
        else:
            sys.argv[0] = program
