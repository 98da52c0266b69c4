"""The parts of training beside the loop, each on its own (no training run): fault handling
(``train/faults.py``), resuming (``train/resume.py``), logs and TensorBoard (``train/run_log.py``),
and the stored form of Python's generator state that checkpoints and the search share."""

import io
import json
import logging
import random
import signal

import pytest
import torch
from torch import nn

from litepose.config import load_config
from litepose.errors import CheckpointError, DataError
from litepose.models.space import ArchManager
from litepose.train.distributed import DistContext
from litepose.train.faults import (NONFINITE, SIGNAL, UNREADABLE, NonFiniteLossError, StepGuard, StopSignals,
                                   UnreadableImages, interrupted_error, nonfinite_loss_error)
from litepose.train.resume import (Progress, check_resumable, check_training_checkpoint, checkpoint_state,
                                   checkpoint_to_resume, restore_training_state)
from litepose.train.run_log import LOGGER_NAME, Meter, RunWriter, epoch_line, fmt, run_record, setup_logger
from litepose.utils.common import rng_state_from_lists, rng_state_to_lists
from training_support import QUICKSTART


class _Records(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture
def records():
    logger = logging.getLogger("test_train_parts")
    handler = _Records()
    logger.addHandler(handler)
    yield logger, handler.messages
    logger.removeHandler(handler)


def _tiny_net():
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU())


# ------------------------------------------------------------------------------ faults
def test_unreadable_images_warn_once_each_within_the_limit_and_then_halt(records):
    logger, messages = records
    images = UnreadableImages(2, logger, missing=["a.jpg"])
    assert messages == ["left out of the training set: image not found: a.jpg"]
    assert len(images) == 1 and not images.too_many
    images.note(["bad b.jpg", "bad b.jpg"])  # the same image met twice is one image, warned about once
    assert len(images) == 2 and images.counts["bad b.jpg"] == 2 and not images.too_many
    assert messages[1:] == ["skipped an unreadable training image (2 so far, DATASET.MAX_UNREADABLE_IMAGES 2): "
                            "bad b.jpg"]
    images.note(["bad c.jpg"])
    assert images.too_many and len(messages) == 2  # past the limit: the halt's error says it, no warning
    error = images.halt_error()
    assert isinstance(error, DataError)
    assert str(error) == ("3 unreadable training images, more than DATASET.MAX_UNREADABLE_IMAGES 2; the last: "
                          "bad c.jpg")


def test_a_halt_for_another_process_s_unreadable_images_says_so(records):
    images = UnreadableImages(5, records[0])
    assert "another process met more than DATASET.MAX_UNREADABLE_IMAGES 5" in str(images.halt_error())


def test_the_guard_undoes_what_a_halted_forward_did_to_batchnorm_statistics():
    net = _tiny_net().train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    guard = StepGuard(net, DistContext())
    guard.begin()
    net(torch.randn(2, 3, 8, 8) * float("nan"))
    assert not torch.equal(net[1].running_mean, before["1.running_mean"])  # the forward moved them
    guard.undo_forward()
    for key, value in net.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_the_guard_halts_for_a_nonfinite_loss_first_then_unreadable_images_then_a_signal():
    guard = StepGuard(_tiny_net(), DistContext())
    finite, nan, inf = torch.tensor(1.0), torch.tensor(float("nan")), torch.tensor(float("-inf"))
    assert guard.verdict(finite, False, False) is None
    assert guard.verdict(nan, True, True) == NONFINITE
    assert guard.verdict(inf, False, False) == NONFINITE
    assert guard.verdict(finite, True, True) == UNREADABLE
    assert guard.verdict(finite, True, False) == SIGNAL


def test_the_guard_rewinds_the_architecture_sampler_to_before_the_step():
    sampler = ArchManager(seed=3)
    guard = StepGuard(_tiny_net(), DistContext(), sampler)
    guard.begin()
    drawn = [sampler.random_sample() for _ in range(3)]
    guard.rewind_sampler()
    assert [sampler.random_sample() for _ in range(3)] == drawn


def test_the_first_stop_signal_is_kept_and_announced_the_second_stops_at_once(capfd):
    before = signal.getsignal(signal.SIGINT)
    signals = StopSignals(announce=True)
    with signals.installed():
        assert signal.getsignal(signal.SIGINT) == signals.handle
        signals.handle(signal.SIGTERM)
        assert signals.received == signal.SIGTERM
        assert "SIGTERM received: stopping after this step with a checkpoint" in capfd.readouterr().err
        with pytest.raises(KeyboardInterrupt):
            signals.handle(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) == before  # the previous handlers are back


def test_a_quiet_process_does_not_announce_the_signal(capfd):
    signals = StopSignals(announce=False)
    signals.handle(signal.SIGINT)
    assert signals.received == signal.SIGINT and capfd.readouterr().err == ""


def test_halt_errors_name_the_place_and_the_checkpoint(tmp_path):
    path = str(tmp_path / "checkpoint.pth.tar")
    error = nonfinite_loss_error(torch.tensor(float("nan")), {"heatmap_0": torch.tensor(float("nan"))},
                                 "epoch 2 step 3/4", path)
    assert isinstance(error, NonFiniteLossError)
    assert str(error) == (f"loss became nan (on this or another process) at epoch 2 step 3/4 (heatmap_0 nan); "
                          f"stopped, the last good checkpoint is {path} (none written yet)")
    stopped = interrupted_error(signal.SIGINT, "after epoch 3", path)
    assert stopped.exit_code == 130 and str(stopped).startswith("SIGINT after epoch 3: checkpoint saved to")
    assert interrupted_error(None, "at x", path).exit_code == 128 + signal.SIGTERM


def test_the_fault_overhead_benchmark_times_the_step_with_and_without_its_guard(tmp_path, synthetic_root,
                                                                                  tiny_arch, one_thread):
    from benchmarks import benchmark_train as benchmark
    from litepose.train import Trainer
    from training_support import tiny_cfg

    trainer = Trainer(tiny_cfg(tmp_path, synthetic_root, tiny_arch, "TRAIN.VAL_FREQ", "0"), DistContext(), QUICKSTART,
                      show_progress=False)
    guard = trainer.guard
    unguarded = benchmark._no_fault_handling(guard)
    unguarded.begin()
    assert unguarded.verdict(torch.tensor(float("nan")), True, True) is None  # the guard switched off
    row = benchmark.measure_fault_overhead(trainer, repeats=2, steps=1, warmup=0, calls=3)
    assert trainer.guard is guard  # put back
    assert len(row["on"]) == len(row["off"]) == len(row["control"]) == 2 and row["step_ms"] > 0
    assert set(row["median_ratios"]) == {"on_wall", "on_cpu", "control_wall", "control_cpu"}
    assert row["begin_ms"] > 0 and row["buffers"] == sum(1 for _ in trainer.model.buffers())
    trainer.writer.close()
    trainer.close()


# ------------------------------------------------------------------------------ resume
def _cfg(tmp_path, *opts):
    return load_config(QUICKSTART, ["OUTPUT_DIR", str(tmp_path), *opts])


def test_the_checkpoint_to_resume_is_train_checkpoint_then_the_run_s_own(tmp_path):
    own = tmp_path / "checkpoint.pth.tar"
    assert checkpoint_to_resume(_cfg(tmp_path), str(own)) is None
    own.write_bytes(b"x")
    assert checkpoint_to_resume(_cfg(tmp_path), str(own)) == str(own)
    assert checkpoint_to_resume(_cfg(tmp_path, "AUTO_RESUME", "False"), str(own)) is None
    other = tmp_path / "other.pth.tar"
    given = _cfg(tmp_path, "TRAIN.RESUME", "True", "TRAIN.CHECKPOINT", str(other))
    with pytest.raises(CheckpointError, match="TRAIN.CHECKPOINT.*not found"):
        checkpoint_to_resume(given, str(own))
    other.write_bytes(b"x")
    assert checkpoint_to_resume(given, str(own)) == str(other)


def test_a_file_that_is_no_training_checkpoint_of_this_model_is_refused():
    with pytest.raises(CheckpointError, match="p is not a training checkpoint of dist_train.py"):
        check_training_checkpoint({"state_dict": {}}, "p", "pose_mobilenet", None)
    checkpoint = {"optimizer": {}, "epoch": 1, "model": "pose_supermobilenet", "arch": None}
    with pytest.raises(CheckpointError, match=r"written for pose_supermobilenet \(no fixed architecture\)"):
        check_training_checkpoint(checkpoint, "p", "pose_mobilenet", None)
    check_training_checkpoint(checkpoint, "p", "pose_supermobilenet", None)


def test_a_mid_epoch_checkpoint_resumes_only_with_its_processes_and_batch():
    checkpoint = {"epoch": 0, "step": 5, "world_size": 2, "images_per_process": 4}
    with pytest.raises(CheckpointError, match=r"by 2 process\(es\), and this run has 1"):
        check_resumable(checkpoint, "p", 1, 4)
    with pytest.raises(CheckpointError, match="with TRAIN.IMAGES_PER_GPU 4, and this run has 8"):
        check_resumable(checkpoint, "p", 2, 8)
    check_resumable(checkpoint, "p", 2, 4)
    check_resumable(dict(checkpoint, step=0), "p", 1, 8)  # an epoch's end resumes with any


def _parts(cfg, seed):
    torch.manual_seed(seed)
    model = _tiny_net()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, [2, 4], 0.1)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    return model, optimizer, scheduler, scaler, ArchManager.from_config(cfg, seed=seed)


def test_a_checkpoint_state_restores_weights_optimiser_generators_sampler_and_progress(tmp_path):
    cfg = _cfg(tmp_path)
    model, optimizer, scheduler, scaler, sampler = _parts(cfg, 0)
    model(torch.randn(2, 3, 8, 8)).sum().backward()
    optimizer.step()
    scheduler.step()
    sampler.random_sample()
    progress = Progress(epoch=3, step=2, meter={"sums": {"loss": 1.5}, "count": 4}, best_perf=0.25, best_epoch=2,
                        global_step=17)
    random.seed(11)
    path = tmp_path / "checkpoint.pth.tar"
    torch.save(checkpoint_state(progress, 0.3, cfg, None, model, optimizer, scheduler, scaler, sampler), path)
    expected = (random.random(), torch.rand(1), sampler.random_sample())

    checkpoint = torch.load(path, weights_only=True)
    fresh = _parts(cfg, 1)
    random.seed(99)
    restored = restore_training_state(checkpoint, str(path), *fresh)
    assert restored == progress
    assert (random.random(), torch.rand(1), fresh[4].random_sample()) == expected
    for key, value in model.state_dict().items():
        assert torch.equal(fresh[0].state_dict()[key], value), key
    assert fresh[2].last_epoch == 1 and fresh[1].state_dict()["state"][0]["step"] == 1
    assert checkpoint["perf"] == 0.3 and checkpoint["model"] == cfg.MODEL.NAME


def test_an_end_of_epoch_checkpoint_keeps_no_running_means(tmp_path):
    cfg = _cfg(tmp_path)
    state = checkpoint_state(Progress(epoch=1, meter={"sums": {}, "count": 3}), None, cfg, None, *_parts(cfg, 0))
    assert state["step"] == 0 and state["epoch_meter"] is None


# ------------------------------------------------------------------------------ run_log
def test_the_meter_weighs_terms_by_images_and_survives_its_state():
    meter = Meter()
    meter.update({"loss": torch.tensor(1.0), "heatmap": 0.5}, 2)
    meter.update({"loss": 4.0, "heatmap": 0.5}, 1)
    assert meter.means() == {"loss": 2.0, "heatmap": 0.5}
    assert Meter(**meter.state()).means() == meter.means()
    assert Meter().means() == {}


def test_the_epoch_line_shows_validation_and_skipped_images_only_when_there_are_some():
    line = epoch_line(0, 5, 1e-3, {"loss": 0.5, "push": 0.001}, 12.34, 61.0)
    assert line == "epoch 1/5 | lr 1.00e-03 | loss 0.5000 push 1.000e-03 | 12.3 img/s, 61s"
    line = epoch_line(4, 5, 1e-3, {"loss": 0.5}, 1.0, 1.0, perf=0.25, improved=True, skipped=2)
    assert line.endswith("| val loss 0.2500 (best) | 2 unreadable image(s) skipped so far")
    assert fmt(0.0123) == "0.0123" and fmt(0.00123) == "1.230e-03"


def test_only_the_first_process_writes_train_log(tmp_path):
    for is_main, folder in ((True, tmp_path / "main"), (False, tmp_path / "other")):
        folder.mkdir()
        logger = setup_logger(str(folder), is_main)
        logger.info("hello")
        logger.warning("careful")
        for handler in logger.handlers:
            handler.flush()
        assert logger.name == LOGGER_NAME and not logger.propagate
        assert logger.level == (logging.INFO if is_main else logging.WARNING)
        if is_main:
            lines = (folder / "train.log").read_text().splitlines()
            assert [line.split(" ", 2)[-1] for line in lines] == ["hello", "careful"]
        else:
            assert not (folder / "train.log").exists()
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()


def test_the_run_record_has_the_run_info_versions_and_resolved_config(tmp_path):
    record = run_record(_cfg(tmp_path), {"command": "python dist_train.py", "git": "abc"})
    lines = record.splitlines()
    assert lines[:2] == ["command: python dist_train.py", "git: abc"]
    assert lines[2].startswith("versions: python ") and f"torch {torch.__version__}" in lines[2]
    assert lines[3] == "resolved config:" and f"  OUTPUT_DIR: {tmp_path}" in lines


def test_the_run_writer_writes_the_record_step_and_epoch_scalars(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    writer = RunWriter(str(tmp_path), "command: x\nline two")
    writer.step(3, torch.tensor(0.5), {"heatmap_0": torch.tensor(0.25)}, 10.0)
    writer.epoch(0, {"loss": 0.4}, 9.0, 1e-3, perf=0.6)
    writer.epoch(1, {"loss": 0.3}, 9.0, 1e-3)
    writer.close()
    events = EventAccumulator(str(tmp_path)).Reload()
    scalars = {tag: [(e.step, round(e.value, 6)) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}
    assert scalars["train/loss"] == [(3, 0.5)] and scalars["train/heatmap_0"] == [(3, 0.25)]
    assert scalars["epoch/loss"] == [(1, 0.4), (2, 0.3)]
    assert scalars["val/loss"] == [(1, 0.6)]  # only where there was a validation
    assert events.Tags()["tensors"] == ["run/text_summary"]


# ------------------------------------------------------------------------------ val_ap
def test_validation_ap_leaves_generators_mode_device_and_active_architecture_as_they_were(tmp_path, synthetic_root):
    import numpy as np

    from litepose.models import build_model
    from litepose.train.val_ap import ValidationAP
    from training_support import TINY_SPACE, tiny_opts

    cfg = load_config(QUICKSTART, tiny_opts(tmp_path, synthetic_root, "", *TINY_SPACE))
    model = build_model(cfg).train()
    sampler = ArchManager.from_config(cfg, seed=0)
    model.set_active_arch(sampler.smallest())
    evaluate_ap = ValidationAP(cfg, 3, drawn=2, model=model)
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    expected = (random.random(), np.random.rand(), torch.rand(1))
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    result = evaluate_ap(model, torch.device("cpu"), sampler.widest())
    assert (random.random(), np.random.rand(), torch.rand(1)) == expected
    assert model.training and model.active_arch == sampler.smallest()
    assert result.images == 3 and set(result.metrics) == {"AP", "AP50", "AP75", "AR"}
    assert len(result.drawn) == 2 and all(p.dtype == np.uint8 and p.ndim == 3 for _, p in result.drawn)
    assert result.line().startswith("val AP on the first 3 test images: AP ")


def test_validation_ap_stops_at_once_on_test_settings_that_select_no_output(tmp_path, synthetic_root, tiny_arch):
    from litepose.errors import ConfigError
    from litepose.models import build_model
    from litepose.train.val_ap import ValidationAP
    from training_support import tiny_cfg

    cfg = tiny_cfg(tmp_path, synthetic_root, tiny_arch, "TEST.WITH_AE", "(False, False)")
    with pytest.raises(ConfigError, match="TEST.WITH_AE selects no output"):
        ValidationAP(cfg, 10, model=build_model(cfg))


def test_only_the_people_the_realtime_filter_keeps_are_drawn(tmp_path, synthetic_root, tiny_arch):
    from types import SimpleNamespace

    import numpy as np

    from litepose.data.coco_format import read_image
    from litepose.train.val_ap import DRAWN_FILTER, ValidationAP
    from litepose.utils.vis import draw_people
    from training_support import tiny_cfg

    annotations = json.loads((synthetic_root / "annotations" / "person_keypoints_val.json").read_text())
    first = annotations["images"][0]
    strong = np.tile([20.0, 30.0, 0.9], (17, 1)) + np.arange(17)[:, None] * [3.0, 2.0, 0.0]
    faint = np.tile([50.0, 10.0, 0.9], (17, 1)) + np.arange(17)[:, None] * [1.0, 4.0, 0.0]
    copy = strong + [0.5, 0.5, 0.0]  # the strong person found twice: suppressed
    threshold = DRAWN_FILTER.min_score
    people = SimpleNamespace(keypoints=np.stack([strong, faint, copy]),
                             scores=np.array([threshold + 0.2, threshold / 2, threshold + 0.1]))
    result = SimpleNamespace(image_ids=[first["id"]], unreadable=[], people={first["id"]: people})
    validation = ValidationAP(tiny_cfg(tmp_path, synthetic_root, tiny_arch), 1, drawn=1)
    [(image_id, picture)] = validation._draw(result)
    image = read_image(synthetic_root / "images" / "val" / first["file_name"])
    assert image_id == first["id"]
    assert np.array_equal(picture, draw_people(image, strong[None], validation.info.skeleton))
    assert not np.array_equal(picture, draw_people(image, np.stack([strong, faint]), validation.info.skeleton))


def test_large_drawn_pictures_are_shrunk_to_512_pixels_a_side():
    import numpy as np

    from litepose.train.val_ap import _shrunk

    assert _shrunk(np.zeros((1000, 600, 3), np.uint8)).shape == (512, 307, 3)
    small = np.zeros((100, 60, 3), np.uint8)
    assert _shrunk(small) is small


# ------------------------------------------------------------------------------ generator state
def _through_json(value):
    return json.loads(json.dumps(value))


def _through_torch(value):
    buffer = io.BytesIO()
    torch.save({"rng": value}, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)["rng"]


@pytest.mark.parametrize("store", [_through_json, _through_torch], ids=["json", "torch.save"])
@pytest.mark.parametrize("with_gauss", [False, True], ids=["no cached gauss", "cached gauss"])
def test_a_python_generator_state_survives_json_and_torch_save(store, with_gauss):
    rng = random.Random(5)
    if with_gauss:
        rng.gauss(0.0, 1.0)  # leaves the second normal deviate cached in the state
    state = rng.getstate()
    assert (state[2] is not None) == with_gauss
    stored = store(rng_state_to_lists(state))
    assert rng_state_from_lists(stored) == state
    expected = [rng.gauss(0.0, 1.0), rng.random()]
    again = random.Random()
    again.setstate(rng_state_from_lists(stored))
    assert [again.gauss(0.0, 1.0), again.random()] == expected


def test_the_sampler_and_the_checkpoint_store_the_generator_as_lists():
    from litepose.train.checkpoint import capture_rng_state, restore_rng_state

    sampler = ArchManager(seed=2)
    state = _through_torch(sampler.state_dict())
    assert isinstance(state["rng"], list) and isinstance(state["rng"][1], list)
    drawn = [sampler.random_sample() for _ in range(2)]
    sampler.load_state_dict(state)
    assert [sampler.random_sample() for _ in range(2)] == drawn
    sampler.load_state_dict({"rng": random.Random(2).getstate()})  # the tuples earlier checkpoints hold
    assert [sampler.random_sample() for _ in range(2)] == drawn

    random.seed(4)
    saved = _through_torch(capture_rng_state())
    expected = random.random()
    random.seed(0)
    restore_rng_state(saved)
    assert random.random() == expected
