"""The library's layers hold: the import-linter contracts in pyproject.toml ([tool.importlinter])
are kept by the code, and each contract breaks when an import against it is added.

The contracts: ``layers`` (each layer imports only from itself and the layers below it; parts
joined by ``|`` not from each other), ``acyclic`` (no cycle between the modules or subpackages
of any package) and ``no-harnesses`` (the library imports nothing of ``benchmarks/``,
``tools/`` or ``tests/``). ``lint-imports`` from the repository root prints the same verdicts
with the offending lines."""

import ast
import copy
import os
import shutil
import subprocess

import grimp
import pytest
from importlinter import api  # also configures import-linter's settings
from importlinter.application import output
from importlinter.contracts.acyclic_siblings import AcyclicSiblingsContract
from importlinter.contracts.forbidden import ForbiddenContract
from importlinter.contracts.layers import LayersContract

import litepose
from conftest import REPO

PYPROJECT = REPO / "pyproject.toml"
CONTRACT_TYPES = {cls.type_name: cls for cls in (LayersContract, AcyclicSiblingsContract, ForbiddenContract)}


@pytest.fixture(scope="module")
def configuration():
    return api.read_configuration(str(PYPROJECT))


@pytest.fixture(scope="module")
def contracts(configuration):
    """Each contract of pyproject.toml by id."""
    return {options["id"]: CONTRACT_TYPES[options["type"]](name=options["name"],
                                                            session_options=configuration["session_options"],
                                                            contract_options=options)
            for options in configuration["contracts_options"]}


@pytest.fixture(scope="module")
def graph():
    """The import graph of the litepose that the tests import (every import, lazy ones too)."""
    return grimp.build_graph("litepose", include_external_packages=True, cache_dir=None)


def verdict(contract, graph):
    """(kept, what import-linter says about a broken contract)."""
    check = contract.check(copy.deepcopy(graph), verbose=False)
    if check.kept:
        return True, ""
    with output.console.capture() as captured:
        contract.render_broken_contract(check)
    return False, captured.get()


def with_import(graph, importer, imported):
    changed = copy.deepcopy(graph)
    changed.add_import(importer=importer, imported=imported, line_number=1, line_contents=f"import {imported}")
    return changed


def test_the_contracts_are_the_three_expected(contracts):
    assert set(contracts) == {"layers", "acyclic", "no-harnesses"}


@pytest.mark.parametrize("contract_id", ["layers", "acyclic", "no-harnesses"])
def test_the_library_keeps_its_import_contract(contracts, graph, contract_id):
    kept, said = verdict(contracts[contract_id], graph)
    assert kept, f"contract '{contract_id}' is broken (run `lint-imports` from the repository root):\n{said}"


def test_every_module_of_the_library_is_in_a_layer(configuration, graph):
    """A new module or subpackage must be placed in the layers, or the contract would not see it."""
    (options,) = [o for o in configuration["contracts_options"] if o["id"] == "layers"]
    entries = {part.strip().strip("()") for layer in options["layers"] for part in layer.replace("|", ":").split(":")}
    outside = sorted(module for module in graph.modules if module.startswith("litepose.")
                     and not any(module == entry or module.startswith(entry + ".") for entry in entries))
    assert outside == [], f"modules in no layer of pyproject.toml's [tool.importlinter] contract 'layers': {outside}"


@pytest.mark.parametrize("importer, imported", [
    ("litepose.models.registry", "litepose.estimator"),    # a model asking the estimator for a constant
    ("litepose.evaluation", "litepose.train"),             # evaluation reaching into training
    ("litepose.utils.io", "litepose.config"),              # a utility that needs the configuration
    ("litepose.inference", "litepose.runtime"),            # the decoder depending on a backend
    ("litepose.models", "litepose.data"),                  # models and data are independent of each other
])
def test_an_upward_import_breaks_the_layers(contracts, graph, importer, imported):
    assert importer in graph.modules and imported in graph.modules
    kept, said = verdict(contracts["layers"], with_import(graph, importer, imported))
    assert not kept and importer in said and imported in said, said


def test_an_import_cycle_breaks_the_acyclic_contract(contracts, graph):
    # the first import between two modules of one package, made circular by its reverse
    importer, imported = min((a, b) for a in graph.modules if a.startswith("litepose.")
                             for b in graph.find_modules_directly_imported_by(a)
                             if b.rpartition(".")[0] == a.rpartition(".")[0] and b.startswith("litepose."))
    kept, said = verdict(contracts["acyclic"], with_import(graph, imported, importer))
    assert not kept and "No cycles are allowed in" in said, said


@pytest.mark.parametrize("harness", ["benchmarks", "tools", "tests"])
def test_importing_a_harness_breaks_the_library_contract(contracts, graph, harness):
    kept, said = verdict(contracts["no-harnesses"], with_import(graph, "litepose.estimator", harness))
    assert not kept and f"litepose.estimator -> {harness}" in said, said


def test_lint_imports_fails_on_an_upward_import_written_in_a_file(tmp_path):
    """End to end, as a contributor meets it: one upward line written into a copy of the library
    makes ``lint-imports`` exit 1 naming that file's import and line."""
    lint_imports = shutil.which("lint-imports")
    if lint_imports is None:
        pytest.skip("import-linter's lint-imports is not on PATH")
    library = tmp_path / "lib" / "litepose"
    shutil.copytree(os.path.dirname(litepose.__file__), library, ignore=shutil.ignore_patterns("__pycache__"))
    errors = library / "errors.py"
    lines = errors.read_text().count("\n")
    errors.write_text(errors.read_text() + "from .estimator import PoseEstimator  # upward\n")
    shutil.copy(PYPROJECT, tmp_path / "pyproject.toml")
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "lib"))
    done = subprocess.run([lint_imports, "--no-cache", "--contract", "layers"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"litepose.errors -> litepose.estimator (l.{lines + 1})" in done.stdout, done.stdout


LOADS_BY_PATH = {"spec_from_file_location", "run_path", "SourceFileLoader", "load_source", "exec", "execfile"}


def test_no_script_harness_or_library_module_loads_a_python_file_by_path():
    """Scripts, harnesses and the library import what they use (``from benchmarks import
    benchmark_train``); none loads another script or a test file from its path."""
    files = [*REPO.glob("*.py"), *(REPO / "lib" / "litepose").rglob("*.py"), *(REPO / "tools").rglob("*.py"),
             *(REPO / "benchmarks").rglob("*.py")]
    found = []
    for path in sorted(files):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
                if name in LOADS_BY_PATH:
                    found.append(f"{path.relative_to(REPO)}:{node.lineno} {name}")
    assert found == [], found
