"""The package as a user installs it: metadata, one version, and the wheel with only the
``onnx`` extra running the estimator where PyTorch is absent."""

import json
import os
import subprocess
import sys

from pathlib import Path

import pytest

import litepose

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def test_version_has_one_home():
    project = PYPROJECT["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "litepose.__version__"}
    assert litepose.__version__.count(".") == 2


def test_runtime_dependencies_hold_no_pytorch():
    names = {req.split(">")[0].split("=")[0].split("<")[0].strip().lower() for req in PYPROJECT["project"]["dependencies"]}
    assert {"numpy", "opencv-python-headless"} <= names
    assert not names & {"torch", "torchvision", "onnxruntime", "openvino"}


def test_packaged_configs_are_the_repository_files():
    # One copy: the package's configs/ are links to the repository's folders.
    configs = REPO / "lib" / "litepose" / "configs"
    for name in ("experiments", "mobile_configs"):
        assert (configs / name).is_symlink() and (configs / name).resolve() == (REPO / name).resolve()


_RUN_WITHOUT_TORCH = """
import importlib.util, json, sys
from litepose import PoseEstimator
import numpy as np
assert importlib.util.find_spec("torch") is None, "torch is installed"
estimator = PoseEstimator.from_exported(sys.argv[1], preset="realtime")  # the export's metadata says the rest
people = estimator(np.zeros((48, 80, 3), np.uint8))
print(json.dumps({"joints": int(people.keypoints.shape[1]), "input_size": estimator.settings.input_size,
                  "torch": "torch" in sys.modules, "file": __import__("litepose").__file__}))
"""


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_wheel_with_onnx_extra_runs_the_estimator_without_pytorch(tmp_path, tiny_arch):
    from litepose.config import load_config
    from litepose.deploy.formats import export_checked
    from litepose.models import build_model

    cfg = load_config(str(REPO / "experiments/coco/mobilenet/mobile.yaml"), ["MODEL.ARCH", str(tiny_arch)])
    model = build_model(cfg).eval()
    export = tmp_path / "tiny.onnx"
    export_checked("onnx", model, str(export), 64, cfg=cfg, dynamic=False, num_images=1)  # as tools/export.py

    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels),
                    str(REPO)], check=True, cwd=tmp_path)
    wheel = next(wheels.glob("litepose-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    # Nothing of this environment leaks in (PYTHONPATH would show the source tree to pip and Python).
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    subprocess.run([str(python), "-m", "pip", "install", "-q", f"{wheel}[onnx]"], check=True, cwd=tmp_path, env=env)
    subprocess.run([str(python), "-m", "pip", "check"], check=True, cwd=tmp_path, env=env)
    out = subprocess.run([str(python), "-c", _RUN_WITHOUT_TORCH, str(export)], cwd=tmp_path, capture_output=True,
                         text=True, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    out = out.stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert result["joints"] == 17 and result["input_size"] == 64 and not result["torch"]
    assert result["file"].startswith(str(venv))
    # The installed package carries the released architectures and configs.
    check = ("from litepose.released import RELEASED; "
             "print(all(__import__('os').path.isfile(m.arch_file) and __import__('os').path.isfile(m.config_file) "
             "for m in RELEASED.values()))")
    shipped = subprocess.run([str(python), "-c", check], check=True, cwd=tmp_path, capture_output=True, text=True,
                             env=env).stdout.strip()
    assert shipped == "True"
