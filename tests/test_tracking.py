"""litepose.tracking: stable identities across frames, One-Euro smoothing, and the generated
sequences that measure them (benchmarks/track_eval.py)."""

import json

import numpy as np
import pytest

from litepose.estimator import People
from litepose.tracking import (OneEuroFilter, PoseTracker, SyntheticFrame, identity_metrics, synthetic_sequence,
                               track_sequence)
from litepose.data.synthetic import sample_person


def _pose(centre, seed=0, score=0.9):
    joints, _ = sample_person(np.random.default_rng(seed), 120, (0.0, 0.0))
    xy = joints - joints.mean(axis=0) + np.asarray(centre, np.float64)
    return np.concatenate([xy, np.full((17, 1), score)], axis=1)


def test_one_euro_filter_smooths_rest_and_follows_motion():
    rng = np.random.default_rng(0)
    f = OneEuroFilter(freq=30, min_cutoff=1.0, beta=0.05)
    noisy = [f(np.array([100.0]) + rng.normal(0, 2, 1))[0] for _ in range(200)]
    assert np.std(noisy[50:]) < 1.0  # noise of 2 px at rest: less than half left
    f = OneEuroFilter(freq=30, min_cutoff=1.0, beta=0.05)
    ramp = [f(np.array([5.0 * t]))[0] for t in range(60)]
    assert abs(ramp[-1] - 5.0 * 59) < 10  # 5 px per frame: lags by under two frames
    with pytest.raises(ValueError):
        OneEuroFilter(freq=0)


def test_crossing_people_keep_their_identities():
    tracker = PoseTracker()
    ids_a, ids_b = [], []
    for t in range(40):  # A walks right, B walks left, on the same line; they cross at t = 20
        a, b = _pose((100 + 10 * t, 200), seed=1), _pose((500 - 10 * t, 205), seed=2)
        people = np.stack([a, b] if t % 2 else [b, a])  # the detector's order changes
        ids, _ = tracker.update(people, np.array([0.9, 0.9]))
        ids = ids if t % 2 else ids[::-1]
        ids_a.append(ids[0])
        ids_b.append(ids[1])
    assert len(set(ids_a)) == 1 and len(set(ids_b)) == 1 and ids_a[0] != ids_b[0]


@pytest.mark.parametrize("max_lost,same", [(10, True), (2, False)])
def test_a_lost_track_is_remembered_for_max_lost_frames(max_lost, same):
    tracker = PoseTracker(max_lost=max_lost)
    for t in range(4):  # walks right at 10 px per frame
        first, _ = tracker.update(_pose((100 + 10 * t, 200))[None], [0.9])
    for t in range(5):  # missed for five frames
        tracker.update(np.zeros((0, 17, 3)), [])
    again, _ = tracker.update(_pose((190, 200))[None], [0.9])  # it kept walking meanwhile
    assert (again[0] == first[0]) == same
    if not same:
        assert again[0] == first[0] + 1  # ids are never reused


def test_low_scores_start_no_track_and_people_get_track_ids():
    tracker = PoseTracker(min_score=0.5)
    ids, _ = tracker.update(np.stack([_pose((100, 100)), _pose((400, 300), score=0.2)]), [0.9, 0.2])
    assert list(ids) == [0, -1]
    people = People(np.stack([_pose((102, 100))]), np.array([0.9]))
    tracked = tracker(people)
    assert list(tracked.track_ids) == [0] and people.track_ids is None


def test_smoothing_reduces_joint_error_and_keeps_identities():
    sequence = synthetic_sequence(frames=80, people=4, seed=3, noise_px=3.0)
    raw_ids, raw = track_sequence(PoseTracker(), sequence, with_keypoints=True)
    smooth_ids, smooth = track_sequence(PoseTracker(smoothing=True), sequence, with_keypoints=True)
    assert all(np.array_equal(a, b) for a, b in zip(raw_ids, smooth_ids))
    from litepose.tracking import joint_error

    assert joint_error(sequence, smooth) < 0.95 * joint_error(sequence, raw)


def test_identity_metrics_count_switches_and_fragmentations():
    frame = lambda gts: SyntheticFrame(np.zeros((len(gts), 17, 3)), np.ones(len(gts)), np.array(gts))
    sequence = [frame([0, 1])] * 5
    ids = [np.array([0, 1]), np.array([0, 1]), np.array([1, 0]), np.array([1, 2]), np.array([1, -1])]
    m = identity_metrics(sequence, ids)
    # frame 2: both swap (2 switches); frame 3: person 1 gets a new id (1 fragmentation).
    assert (m["switches"], m["fragmentations"], m["untracked"]) == (2, 1, 1)
    assert m["switches_per_100"] == pytest.approx(40.0)


def test_generated_sequence_has_known_identities_dropouts_and_false_detections():
    sequence = synthetic_sequence(frames=100, people=6, seed=0, person_dropout=0.05, false_positives=0.2)
    counts = [int((f.gt_ids >= 0).sum()) for f in sequence]
    assert max(counts) == 6 and min(counts) < 6  # dropouts
    assert sum(int((f.gt_ids < 0).sum()) for f in sequence) > 5
    assert all(f.keypoints.shape[1:] == (17, 3) and f.truth.shape[1:] == (17, 2) for f in sequence)


def test_track_eval_tool_prints_the_figures(tmp_path, capsys):
    from benchmarks import track_eval

    out = tmp_path / "track.json"
    report = track_eval.main(["--frames", "60", "--seeds", "0", "--scenario", "hard", "--json", str(out)])
    printed = capsys.readouterr().out
    assert "switches/100" in printed and "no lost-track memory" in printed
    rows = {row["tracker"]: row for row in report}
    assert rows["tracker"]["fragmentations"] < rows["no lost-track memory"]["fragmentations"]
    assert json.loads(out.read_text())[0]["scenario"] == "hard"
    from litepose.errors import LitePoseError

    with pytest.raises(LitePoseError, match="already exists"):
        track_eval.main(["--frames", "10", "--json", str(out)])


def test_track_eval_interrupted_keeps_the_finished_rows(tmp_path, monkeypatch, capsys):
    from benchmarks import track_eval
    from litepose import tracking
    from litepose.errors import Interrupted

    calls = []

    def interrupted_third_time(*args, **kwargs):  # Ctrl-C while the third variant runs
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    real = tracking.track_sequence
    monkeypatch.setattr(tracking, "track_sequence", interrupted_third_time)
    out = tmp_path / "track.json"
    with pytest.raises(Interrupted, match=f"^2 finished row\\(s\\) written to {out}$") as stopped:
        track_eval.main(["--frames", "10", "--seeds", "0", "--scenario", "easy", "--json", str(out)])
    assert stopped.value.exit_code == 130
    assert [row["tracker"] for row in json.loads(out.read_text())] == ["tracker", "no lost-track memory"]
