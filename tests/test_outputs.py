"""Every command that writes a file checks it with the one ``check_output_file`` before any
work: an existing output is kept unless --force (or, without such an option, a new name is
asked for), a folder where a file goes is refused, and each refusal is one line naming the path."""

import pytest

from benchmarks import benchmark_e2e
from conftest import REPO, arch_path
from helpers import load_script
from litepose.cli import run_cli

MOBILE = str(REPO / "experiments" / "crowd_pose" / "mobilenet" / "mobile.yaml")
SUPER = str(REPO / "experiments" / "crowd_pose" / "mobilenet" / "supermobile.yaml")
XS = str(arch_path("XS"))


def run_main(relative, argv, capsys):
    """``run_cli(main, argv)``: (exit status, stdout, stderr lines)."""
    with pytest.raises(SystemExit) as stopped:
        run_cli(load_script(relative).main, [str(a) for a in argv])
    out, err = capsys.readouterr()
    return stopped.value.code, out, [line for line in err.splitlines() if line.strip()]


def none_pth(tmp_path):
    return tmp_path / "none.pth"  # never read: the output is checked first


# name: (script, its other arguments, the output option, the line for an existing output)
FORCE = "already exists (pass --force to overwrite it)"
COMMANDS = {
    "weight_transfer": ("weight_transfer.py", lambda t: ["--cfg", SUPER, "--superconfig", XS, "TEST.MODEL_FILE",
                                                          none_pth(t)], "--output", f"--output {{}} {FORCE}"),
    "calibrate_bn": ("tools/calibrate_bn.py", lambda t: ["--cfg", MOBILE, "TEST.MODEL_FILE", none_pth(t)],
                     "--output", f"--output {{}} {FORCE}"),
    "search": ("tools/search.py", lambda t: ["--cfg", SUPER, "--max-macs", "1G"], "--output",
               f"--output {{}} {FORCE}"),
    "export": ("tools/export.py", lambda t: ["--format", "onnx", "--cfg", MOBILE, "TEST.MODEL_FILE", none_pth(t)],
               "--output", f"--output {{}} {FORCE}"),
    "device_check": ("benchmarks.device_check", lambda t: ["--dry-run"], "--output", f"--output {{}} {FORCE}"),
    "track_eval": ("benchmarks.track_eval", lambda t: ["--frames", "5"], "--json",
                   "--json file {} already exists; give a new file name"),
}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_an_existing_output_is_one_line_and_kept(name, tmp_path, capsys):
    script, before, option, exists = COMMANDS[name]
    out = tmp_path / "existing.out"
    out.write_text("mine")
    code, printed, lines = run_main(script, before(tmp_path) + [option, out], capsys)
    assert code == 2 and lines == [f"error: {exists.format(out)}"], lines
    assert out.read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == ["existing.out"]


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_folder_as_output_is_one_line_even_with_force(name, tmp_path, capsys):
    script, before, option, _ = COMMANDS[name]
    force = [] if name == "track_eval" else ["--force"]  # track_eval never overwrites
    label = "--json file" if name == "track_eval" else option
    code, _, lines = run_main(script, before(tmp_path) + [option, tmp_path] + force, capsys)
    assert code == 2 and lines == [f"error: {label} {tmp_path} is a folder; give a file name"], lines


def test_benchmark_e2e_refuses_an_existing_json_before_any_work(tmp_path, capsys):
    out = tmp_path / "e2e.json"
    out.write_text("[]")
    with pytest.raises(SystemExit) as stopped:  # its options are argparse's: usage, then the error line
        benchmark_e2e.main(["--json", str(out)])
    printed, err = capsys.readouterr()
    assert stopped.value.code == 2 and printed == ""
    assert err.splitlines()[-1].endswith(f"error: --json {out} already exists; give a new file name")
    assert out.read_text() == "[]"


def test_crash_drill_checks_its_table_before_the_drill(tmp_path, capsys):
    code, printed, lines = run_main("benchmarks.crash_drill", ["--output", tmp_path, "--workdir", tmp_path / "w"],
                                    capsys)
    assert code == 2 and lines == [f"error: --output {tmp_path} is a folder; give a file name"]
    assert printed == "" and not (tmp_path / "w").exists()
