"""The ``litepose`` command (litepose.commands): one subcommand per script, the scripts as shims."""

import subprocess
import sys

import pytest

from conftest import REPO
from helpers import load_script, run_script_in_process
from litepose import commands

# The release's root scripts and the tools, each the shim of one command.
SHIMS = {"dist_train.py": "train", "valid.py": "valid", "weight_transfer.py": "transfer",
         "arch_manager.py": "arch", "tools/search.py": "search", "tools/calibrate_bn.py": "calibrate-bn",
         "tools/profile_model.py": "profile", "tools/export.py": "export", "tools/quantize.py": "quantize",
         "tools/demo.py": "demo", "tools/eval_results.py": "eval-results",
         "tools/make_synthetic_dataset.py": "make-dataset"}


def run(argv, capsys):
    """``litepose ARGV`` in this process: (exit status, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        commands.main(argv)
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def test_every_command_module_is_a_subcommand_and_every_script_a_shim_of_one():
    modules = {p.stem for p in (REPO / "lib" / "litepose" / "commands").glob("*.py")} - {"__init__"}
    assert set(commands.COMMANDS.values()) == modules
    assert set(SHIMS.values()) == set(commands.COMMANDS)


def test_litepose_help_lists_every_command_with_its_docstring_summary(capsys):
    code, out, err = run(["--help"], capsys)
    assert code == 0 and not err
    listed = [line.split()[0] for line in out.split("commands:\n")[1].split("\n\n")[0].splitlines()]
    assert listed == list(commands.COMMANDS)
    assert "  valid         Evaluate a checkpoint or an export on COCO or CrowdPose" in out
    for name, module in commands.COMMANDS.items():
        summary = commands.summary(name)
        assert summary and f"{name}" in out and summary in out
        assert summary == __import__(f"litepose.commands.{module}", fromlist=["main"]).__doc__.splitlines()[0]


def test_version_is_the_packages_one(capsys):
    import litepose

    assert run(["--version"], capsys) == (0, f"litepose {litepose.__version__}\n", "")


@pytest.mark.parametrize("name", list(commands.COMMANDS))
def test_every_subcommand_has_help_naming_it(name, capsys):
    code, out, err = run([name, "--help"], capsys)
    assert code == 0 and not err
    assert out.startswith(f"usage: litepose {name} ")
    assert commands.summary(name) in " ".join(out.split())


@pytest.mark.parametrize("argv, message", [
    (["trian"], "unknown command 'trian'; did you mean 'train'?"),
    (["frobnicate", "--cfg", "x.yaml"], "unknown command 'frobnicate'; commands: train, valid,"),
    ([], "no command given"),
])
def test_an_unknown_or_missing_command_is_one_line_and_exit_2(argv, message, capsys):
    code, out, err = run(argv, capsys)
    assert code == 2 and not out
    assert err.count("\n") == 1 and err.startswith("litepose: error: ") and message in err


def test_a_subcommands_bad_input_is_the_scripts_one_line_and_exit_2(capsys):
    code, out, err = run(["valid", "--cfg", str(REPO / "missing.yaml")], capsys)
    assert code == 2 and err.count("\n") == 1 and "missing.yaml" in err


def test_an_interrupt_is_exit_130_and_sys_argv_is_put_back(monkeypatch, capsys):
    from litepose.commands import eval_results

    def interrupted(argv):
        assert sys.argv[0] == "litepose eval-results"  # argparse's program name while it runs
        raise KeyboardInterrupt

    monkeypatch.setattr(eval_results, "main", interrupted)
    before = list(sys.argv)
    code, _, err = run(["eval-results"], capsys)
    assert code == 130 and err == "interrupted\n" and sys.argv == before


def test_a_missing_extra_names_its_install_command(monkeypatch, capsys):
    from litepose.commands import export

    def needs_nncf(argv):
        raise ModuleNotFoundError("No module named 'nncf'", name="nncf")

    monkeypatch.setattr(export, "main", needs_nncf)
    code, _, err = run(["export"], capsys)
    assert code == 2 and err.count("\n") == 1 and "pip install 'litepose[export]'" in err


@pytest.mark.parametrize("script, name", sorted(SHIMS.items()))
def test_each_script_runs_its_commands_code_with_the_same_arguments(script, name, capsys):
    module = __import__(f"litepose.commands.{commands.COMMANDS[name]}", fromlist=["main"])
    assert load_script(script).main is module.main
    shim = run_script_in_process(script, ["--help"], capsys)
    code, out, _ = run([name, "--help"], capsys)
    assert shim.returncode == code == 0
    program = script.rsplit("/", 1)[-1]
    # The same parser: the same text once the program's name is the same (argparse wraps the
    # usage lines by the name's length, so whitespace is compared as runs).
    assert " ".join(shim.stdout.replace(f"usage: {program} ", "usage: litepose {name} ".format(name=name)).split()) \
        == " ".join(out.split())


# In the probe's interpreter importing torch fails and is recorded: help and argument errors
# must answer without it (litepose.commands imports a command's module only when it runs; export
# and quantize import their exporters once the arguments are good).
NO_TORCH_PROBE = """
import importlib.abc, runpy, sys

tried = []

class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "torchvision"):
            tried.append(name)
            raise ModuleNotFoundError(f"{name} is blocked in this probe", name=name)

sys.meta_path.insert(0, NoTorch())
from litepose.commands import main

def status(run):
    try:
        run()
    except SystemExit as exc:
        return exc.code
    return 0

def script(path, *argv):
    sys.argv[:] = [path, *argv]
    return runpy.run_path(path, run_name="__main__")

def module(*argv):  # python -m litepose ARGV
    sys.argv[:] = ["litepose", *argv]
    return runpy.run_module("litepose", run_name="__main__", alter_sys=True)

codes = [status(lambda: main(argv)) for argv in (
    ["--help"], ["demo", "--help"], ["export", "--help"], ["quantize", "--help"],
    ["export", "--cfg", "x.yaml", "--format", "keras"],
    ["export", "--cfg", "x.yaml", "--format", "tflite", "--dynamic"],
    ["export", "--cfg", "x.yaml", "--format", "torchscript", "--fp16"])]
codes += [status(lambda: script("tools/export.py", "--help")), status(lambda: module("export", "--help"))]
print([codes, tried, sorted(m for m in ("torch", "torchvision") if m in sys.modules)])
"""


def test_help_and_argument_errors_of_the_commands_need_no_pytorch():
    done = subprocess.run([sys.executable, "-m", "litepose", "--help"], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and "calibrate-bn" in done.stdout and not done.stderr
    done = subprocess.run([sys.executable, "-c", NO_TORCH_PROBE], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == str([[0, 0, 0, 0, 2, 2, 2, 0, 0], [], []])
    errors = [line for line in done.stderr.splitlines() if "error:" in line]
    assert len(errors) == 3 and "invalid choice: 'keras'" in errors[0]
    assert "--dynamic is not available for tflite" in errors[1] and "--fp16 is not available for torchscript" in errors[2]
