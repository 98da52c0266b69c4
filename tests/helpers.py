"""Shared test helpers."""

import importlib.util

import torch
import torch.nn as nn

from conftest import REPO


def load_script(relative):
    """A script of the repository (``tools/benchmark.py``, ...) as a module, loaded from its path:
    the scripts are not a package, and nothing is added to ``sys.path``."""
    path = REPO / relative
    spec = importlib.util.spec_from_file_location(f"script_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class ScriptResult:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def run_script_in_process(relative, argv, capsys):
    """Run a script's ``main`` through ``run_cli`` in this process, as ``python SCRIPT ARGV``
    would (exit status, stdout, stderr), without paying a new interpreter and torch import."""
    from litepose.utils.cli import run_cli

    capsys.readouterr()
    try:
        run_cli(load_script(relative).main, list(argv))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
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
