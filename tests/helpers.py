"""Shared test helpers."""

import importlib
import importlib.util
import os
import sys

import torch
import torch.nn as nn

from conftest import REPO


def load_script(relative):
    """A script of the repository as a module: a harness of the ``benchmarks`` package
    (``"benchmarks.benchmark"``) is imported as ``python -m`` runs it; a user script
    (``"tools/demo.py"``) is loaded from its path, since ``tools/`` is not a package, and nothing
    is added to ``sys.path``."""
    if not relative.endswith(".py"):
        return importlib.import_module(relative)
    path = REPO / relative
    spec = importlib.util.spec_from_file_location(f"script_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class ScriptResult:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def _process_state():
    """What a script may change for the whole process: compute threads (``--threads``,
    ``configure_process``), OpenCV's thread pool (``single_opencv_thread``), the deterministic
    and cuDNN switches (``configure_backends``), grad mode, the environment, the working
    folder and ``sys.argv``."""
    import cv2

    return {"threads": torch.get_num_threads(), "cv2_threads": cv2.getNumThreads(),
            "deterministic": (torch.are_deterministic_algorithms_enabled(),
                              torch.is_deterministic_algorithms_warn_only_enabled()),
            "cudnn": (torch.backends.cudnn.enabled, torch.backends.cudnn.deterministic,
                      torch.backends.cudnn.benchmark),
            "grad": torch.is_grad_enabled(), "environ": dict(os.environ), "cwd": os.getcwd(), "argv": list(sys.argv)}


def _restore_process_state(state):
    import cv2

    if torch.get_num_threads() != state["threads"]:
        torch.set_num_threads(state["threads"])
    if cv2.getNumThreads() != state["cv2_threads"]:
        cv2.setNumThreads(state["cv2_threads"])
    mode, warn_only = state["deterministic"]
    torch.use_deterministic_algorithms(mode, warn_only=warn_only)
    (torch.backends.cudnn.enabled, torch.backends.cudnn.deterministic,
     torch.backends.cudnn.benchmark) = state["cudnn"]
    torch.set_grad_enabled(state["grad"])
    if dict(os.environ) != state["environ"]:
        os.environ.clear()
        os.environ.update(state["environ"])
    os.chdir(state["cwd"])
    sys.argv[:] = state["argv"]


def run_script_in_process(relative, argv, capsys, cwd=REPO):
    """Run a script's ``main`` through ``run_cli`` in this process, as ``python SCRIPT ARGV``
    run in ``cwd`` (default: the repository, where the scripts' relative paths start) would:
    exit status, stdout, stderr, without paying a new interpreter and torch import.

    ``sys.argv[0]`` is the script (argparse names it in usage lines), and whatever process-wide
    state the script sets (see ``_process_state``) is put back afterwards, so that one script's
    ``--threads 1`` does not slow every later test. An exception other than ``SystemExit``
    (a crash, which a subprocess would report as a traceback and status 1) propagates to the
    test with its traceback."""
    from litepose.cli import run_cli

    script = load_script(relative)
    argv = [str(arg) for arg in argv]
    state = _process_state()
    capsys.readouterr()
    try:
        os.chdir(cwd)
        sys.argv[:] = [script.__file__, *argv]  # what python SCRIPT and python -m MODULE both set
        try:
            run_cli(script.main, argv)
            code = 0
        except SystemExit as exc:
            if exc.code is None or isinstance(exc.code, int):
                code = exc.code or 0
            else:  # sys.exit("message"): the interpreter prints it and exits 1
                print(exc.code, file=sys.stderr)
                code = 1
    finally:
        _restore_process_state(state)
    out, err = capsys.readouterr()
    return ScriptResult(code, out, err)


def randomize_(model, seed=0):
    """Give every weight, BN statistic and kernel transform a non-trivial random value, so
    that equality tests cannot pass by accident (identity transforms, unit BN)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.weight.copy_(torch.rand(module.weight.shape, generator=generator) + 0.5)
                module.bias.copy_(torch.rand(module.bias.shape, generator=generator) * 0.4 - 0.2)
                module.running_mean.copy_(torch.rand(module.running_mean.shape, generator=generator) - 0.5)
                module.running_var.copy_(torch.rand(module.running_var.shape, generator=generator) + 0.5)
            elif isinstance(module, nn.Linear):
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * 0.3)
                module.bias.copy_(torch.randn(module.bias.shape, generator=generator) * 0.05)
    return model


def random_state_from_shapes(shapes, seed=0):
    """A state_dict with the given key -> shape map, filled with random values."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in shapes.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(7)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=generator) + 0.5
        else:
            state[key] = torch.randn(shape, generator=generator) * 0.1
    return state


def max_abs_diff(outputs_a, outputs_b):
    return max((a - b).abs().max().item() for a, b in zip(outputs_a, outputs_b))
