"""benchmarks/realtime_ab.py: two checkouts alternating round by round, the pipeline's share."""

from benchmarks import realtime_ab
from conftest import REPO
from helpers import run_script_in_process


def test_a_folder_that_is_not_a_checkout_is_one_line_and_exit_2(tmp_path, capsys):
    result = run_script_in_process("benchmarks.realtime_ab", ["--before", str(tmp_path), "--after", str(REPO)], capsys)
    assert result.returncode == 2
    assert f"--before {tmp_path}: not a checkout of this repository" in result.stderr


def test_checkouts_alternate_and_the_share_is_pre_plus_post_over_the_network(tmp_path, monkeypatch, capsys):
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "compare_alternatives.py").write_text("")  # what a checkout is known by
    runs = []

    def fake_run(tree, output_dir, frames, threads, data):
        runs.append(tree)
        post = 4.0 if tree == str(REPO) else 2.0  # ms; "after" (REPO itself here) is twice as slow after the network
        return {kind: [(1.0, 20.0, post)] * frames for kind in realtime_ab.KINDS}

    monkeypatch.setattr(realtime_ab, "_run", fake_run)
    before = str(tmp_path)
    assert realtime_ab.main(["--before", before, "--after", str(REPO), "--rounds", "2", "--frames", "3"]) == 0
    out = capsys.readouterr().out
    assert runs == [before, str(REPO), str(REPO), before]
    assert "| before | random | 6 | 20.0 | 3.0 | 15.0 % | 15 % |" in out
    assert "| after | random | 6 | 20.0 | 5.0 | 25.0 % | 25 % |" in out
    assert "random: after / before of the median share within each round: median 1.67" in out
