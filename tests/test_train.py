"""Training: learning happens, checkpoints are safe and resumable, distributed runs work on CPU,
bad input stops with one line, the supernet trains each sub-network at its own size."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import REPO
from litepose.config import load_config
from litepose.data.synthetic import generate_synthetic_dataset
from litepose.errors import CheckpointError
from litepose.models import build_model, load_checkpoint
from litepose.train import NonFiniteLossError, Trainer, run_dirs, train
from litepose.train.checkpoint import load_training_checkpoint
from litepose.train.distributed import DistContext
from training_support import (COCO_MINI, NO_AUGMENT, QUICKSTART, TINY_ARCH, TINY_SPACE, one_line, run_script, tiny_cfg,
                              tiny_opts)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.skipif(not COCO_MINI.is_dir(), reason="../shared/data/coco_mini absent")
def test_a_few_steps_on_coco_mini_lower_the_loss(tmp_path, tiny_arch):
    cfg = load_config(QUICKSTART, [
        "DATASET.SYNTHETIC", "False", "DATASET.ROOT", "", "DATASET.TRAIN_ANN_FILE", str(COCO_MINI / "person_keypoints_mini.json"),
        "DATASET.TRAIN_IMAGE_DIR", str(COCO_MINI / "images"), "MODEL.ARCH", str(tiny_arch), "TRAIN.INPUT_SIZE", "128",
        "OUTPUT_DIR", str(tmp_path / "o"), "LOG_DIR", str(tmp_path / "l"), "WORKERS", "0", "TRAIN.IMAGES_PER_GPU", "2",
        "TRAIN.VAL_FREQ", "0", "TRAIN.END_EPOCH", "8", "DEVICE", "cpu", *NO_AUGMENT])
    trainer = Trainer(cfg, DistContext(), QUICKSTART, show_progress=False)
    first, _, _ = trainer.train_epoch(0)
    for epoch in range(1, 8):
        last, _, _ = trainer.train_epoch(epoch)
    assert last["loss"] < 0.7 * first["loss"]
    assert last["heatmap_1"] < first["heatmap_1"]


def test_checkpoints_load_with_weights_only_and_through_load_checkpoint(tmp_path, synthetic_root, tiny_arch):
    cfg = tiny_cfg(tmp_path, synthetic_root, tiny_arch)
    summary = train(cfg, QUICKSTART, show_progress=False)
    assert summary["output_dir"] == os.path.join(str(tmp_path / "output"), "coco_kpt", "pose_mobilenet", "quickstart")
    for name in ("checkpoint.pth.tar", "model_best.pth.tar", "final_state.pth.tar"):
        path = os.path.join(summary["output_dir"], name)
        torch.load(path, map_location="cpu", weights_only=True)
        load_checkpoint(build_model(cfg), path)
    checkpoint = load_training_checkpoint(summary["checkpoint"])
    assert checkpoint["epoch"] == 1 and checkpoint["arch"] == TINY_ARCH and checkpoint["model"] == "pose_mobilenet"
    assert summary["best_val_loss"] == checkpoint["best_perf"] and summary["best_val_loss"] > 0
    assert os.path.isfile(os.path.join(summary["output_dir"], "train.log"))
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(run_dirs(cfg, QUICKSTART)[1]))


def _optimizer_tensors(state):
    return {(k, name): v for k, entry in state["state"].items() for name, v in entry.items()}


def test_killed_run_resumes_at_the_right_epoch_with_identical_optimizer_state(tmp_path, synthetic_root, tiny_arch):
    opts = tiny_opts(tmp_path, synthetic_root, tiny_arch, "TRAIN.END_EPOCH", "30", "TRAIN.VAL_FREQ", "0")
    process = subprocess.Popen([sys.executable, "dist_train.py", "--cfg", QUICKSTART, "--no-progress", *opts], cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env=dict(os.environ, OMP_NUM_THREADS="1"))
    cfg = load_config(QUICKSTART, opts)
    checkpoint_path = os.path.join(run_dirs(cfg, QUICKSTART)[0], "checkpoint.pth.tar")
    deadline = time.time() + 240
    while not os.path.exists(checkpoint_path) and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert os.path.exists(checkpoint_path), process.stderr.read()
    saved = load_training_checkpoint(checkpoint_path)
    assert 1 <= saved["epoch"] < 30

    trainer = Trainer(cfg, DistContext(), QUICKSTART, show_progress=False)
    assert trainer.begin_epoch == saved["epoch"]
    resumed, expected = _optimizer_tensors(trainer.optimizer.state_dict()), _optimizer_tensors(saved["optimizer"])
    assert resumed.keys() == expected.keys() and len(expected) > 0
    for key, value in expected.items():
        assert torch.equal(resumed[key], value), key
    assert trainer.scheduler.last_epoch == saved["epoch"]
    for key, value in saved["state_dict"].items():
        assert torch.equal(trainer.model.state_dict()[key], value)


def test_resumed_run_ends_where_an_uninterrupted_run_ends(tmp_path, synthetic_root, tiny_arch):
    straight = train(tiny_cfg(tmp_path / "a", synthetic_root, tiny_arch, "TRAIN.END_EPOCH", "2", "TRAIN.VAL_FREQ", "0"),
                     QUICKSTART, show_progress=False)
    train(tiny_cfg(tmp_path / "b", synthetic_root, tiny_arch, "TRAIN.END_EPOCH", "1", "TRAIN.VAL_FREQ", "0"),
          QUICKSTART, show_progress=False)
    resumed = train(tiny_cfg(tmp_path / "b", synthetic_root, tiny_arch, "TRAIN.END_EPOCH", "2", "TRAIN.VAL_FREQ", "0"),
                    QUICKSTART, show_progress=False)
    a = torch.load(straight["final_state"], weights_only=True)
    b = torch.load(resumed["final_state"], weights_only=True)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=key)


def _event_data(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"images": 0, "scalars": 0}).Reload()
    scalars = {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}
    images = {tag: [(e.step, e.width, e.height) for e in events.Images(tag)] for tag in events.Tags()["images"]}
    return scalars, images


def test_validation_writes_the_keypoint_ap_and_drawn_predictions_and_leaves_training_unchanged(
        tmp_path, synthetic_root, tiny_arch):
    def cfg(folder, *extra):
        return tiny_cfg(folder, synthetic_root, tiny_arch, "TRAIN.END_EPOCH", "2", *extra)

    without = train(cfg(tmp_path / "a", "TRAIN.VAL_AP_IMAGES", "0"), QUICKSTART, show_progress=False)
    with_ap = train(cfg(tmp_path / "b"), QUICKSTART, show_progress=False)
    assert without["last_val_ap"] is None and 0.0 <= with_ap["last_val_ap"] <= 1.0
    a = torch.load(without["final_state"], weights_only=True)
    b = torch.load(with_ap["final_state"], weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)  # the evaluation changed nothing: generators, modes, weights

    log = open(os.path.join(with_ap["output_dir"], "train.log"), encoding="utf-8").read()
    assert len(re.findall(r"val AP on the first 4 test images: AP -?\d\.\d{3}, Ap \.5 .*, AR .* \(\d+\.\d s\)", log)) == 2
    scalars, images = _event_data(run_dirs(cfg(tmp_path / "b"), QUICKSTART)[1])
    for tag in ("val/AP", "val/AP50", "val/AP75", "val/AR"):
        assert [step for step, _ in scalars[tag]] == [1, 2], tag
    assert scalars["val/AP"][-1][1] == pytest.approx(with_ap["last_val_ap"])
    assert len(images) == 4 and all(tag.startswith("val/predictions/") for tag in images)
    assert all([step for step, _, _ in entries] == [1, 2] for entries in images.values())
    assert not _event_data(run_dirs(cfg(tmp_path / "a"), QUICKSTART)[1])[1]  # VAL_AP_IMAGES 0: no pictures

    # Resumed between the two validations, the run still ends with the uninterrupted weights.
    train(cfg(tmp_path / "c", "TRAIN.END_EPOCH", "1"), QUICKSTART, show_progress=False)
    resumed = train(cfg(tmp_path / "c"), QUICKSTART, show_progress=False)
    c = torch.load(resumed["final_state"], weights_only=True)
    for key in a:
        torch.testing.assert_close(c[key], a[key], rtol=1e-5, atol=1e-6, msg=key)


def test_resume_refuses_a_checkpoint_of_another_architecture(tmp_path, synthetic_root, tiny_arch):
    train(tiny_cfg(tmp_path, synthetic_root, tiny_arch, "TRAIN.VAL_FREQ", "0"), QUICKSTART, show_progress=False)
    other = dict(TINY_ARCH, deconv_setting=[16, 8, 8])
    other_path = tmp_path / "other.json"
    other_path.write_text(json.dumps(other))
    cfg = tiny_cfg(tmp_path, synthetic_root, other_path, "TRAIN.END_EPOCH", "2")
    with pytest.raises(CheckpointError, match="was written for pose_mobilenet .*deconv 8/8/8"):
        Trainer(cfg, DistContext(), QUICKSTART, show_progress=False)


def test_nan_loss_stops_naming_epoch_and_step_and_keeps_the_last_checkpoint(tmp_path, synthetic_root, tiny_arch):
    train(tiny_cfg(tmp_path, synthetic_root, tiny_arch, "TRAIN.VAL_FREQ", "0"), QUICKSTART, show_progress=False)
    trainer = Trainer(tiny_cfg(tmp_path, synthetic_root, tiny_arch, "TRAIN.END_EPOCH", "3", "TRAIN.VAL_FREQ", "0"),
                      DistContext(), QUICKSTART, show_progress=False)
    criterion, calls = trainer.criterion, []

    def poisoned(*args):
        terms = criterion(*args)
        calls.append(1)
        if len(calls) == 2:
            terms["heatmap_0"] = terms["heatmap_0"] * float("nan")
        return terms

    trainer.criterion = poisoned
    trainer.criterion.distillation = criterion.distillation
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    with pytest.raises(NonFiniteLossError, match=r"loss became nan .*epoch 2 step 2/3 .*checkpoint.pth.tar"):
        trainer.fit()
    assert load_training_checkpoint(trainer.checkpoint_path)["epoch"] == 1
    after = trainer.model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # step 1 trained


def test_supernet_trains_each_sampled_architecture_at_its_own_size(tmp_path, synthetic_root):
    cfg = load_config(QUICKSTART, tiny_opts(tmp_path, synthetic_root, "", "TRAIN.SANDWICH", "True",
                                            "TRAIN.VAL_FREQ", "0", *TINY_SPACE))
    trainer = Trainer(cfg, DistContext(), QUICKSTART, show_progress=False)
    assert trainer.data_size == 96
    seen = []
    trainer.model.register_forward_pre_hook(
        lambda module, inputs: seen.append((inputs[0].shape[-1], module.active_arch["img_size"],
                                            module.active_arch["input_channel"])))
    trainer.train_epoch(0)
    assert len(seen) == 3 * len(trainer.train_loader)
    assert all(size == img_size for size, img_size, _ in seen)
    widest, smallest = trainer.sampler.widest(), trainer.sampler.smallest()
    for step in range(len(trainer.train_loader)):
        assert seen[3 * step][1:] == (widest["img_size"], widest["input_channel"])
        assert seen[3 * step + 1][1:] == (smallest["img_size"], smallest["input_channel"])
    # Every process draws the same architectures: the sequence depends on TRAIN.SEED only.
    first = Trainer(cfg, DistContext(), QUICKSTART, show_progress=False)
    second = Trainer(cfg, DistContext(), QUICKSTART, show_progress=False)
    assert [first.step_archs() for _ in range(4)] == [second.step_archs() for _ in range(4)]


def test_missing_pretrained_file_is_a_clear_error(tmp_path, synthetic_root, tiny_arch):
    cfg = tiny_cfg(tmp_path, synthetic_root, tiny_arch, "MODEL.PRETRAINED", str(tmp_path / "absent.pth"))
    with pytest.raises(CheckpointError, match=r"MODEL.PRETRAINED: checkpoint not found: .*absent\.pth"):
        Trainer(cfg, DistContext(), QUICKSTART, show_progress=False)


def test_pretrained_initialisation_skips_the_head_and_sorts_supernet_channels(tmp_path, synthetic_root):
    from litepose.train.trainer import load_pretrained
    import logging

    cfg = load_config(QUICKSTART, tiny_opts(tmp_path, synthetic_root, "", *TINY_SPACE))
    source = build_model(cfg)
    with torch.no_grad():
        for p in source.parameters():
            p.normal_()
    path = tmp_path / "pretrained.pth"
    torch.save({"state_dict": {"module." + k: v for k, v in source.state_dict().items()}}, path)
    target = build_model(cfg)
    head_before = target.final_refined[0].conv[3].weight.clone()
    load_pretrained(target, str(path), logging.getLogger("test"))
    assert torch.equal(target.final_refined[0].conv[3].weight, head_before)        # head skipped
    assert torch.equal(target.stage[3][0].depth_conv[0].weight, source.stage[3][0].depth_conv[0].weight)
    # Channels sorted by importance: the first stage's output channels, by the L1 norm of the
    # next layer's input weights, come out in decreasing order.
    importance = target.stage[1][0].inv[0].weight.abs().sum(dim=(0, 2, 3))
    assert torch.all(importance[:-1] >= importance[1:])
    images = torch.randn(1, 3, 96, 96)
    source.eval(), target.eval()
    source_out, target_out = source(images), target(images)
    assert not torch.allclose(source_out[0], target_out[0])  # heads differ, so outputs differ


def test_pretrained_head_option_keeps_the_extracted_networks_head(tmp_path, synthetic_root, tiny_arch):
    from litepose.train.trainer import load_pretrained
    import logging

    cfg = tiny_cfg(tmp_path, synthetic_root, tiny_arch)
    source = build_model(cfg)
    with torch.no_grad():
        for p in source.parameters():
            p.normal_()
    path = tmp_path / "extracted.pth"
    torch.save(source.state_dict(), path)
    target = build_model(cfg)
    load_pretrained(target, str(path), logging.getLogger("test"), with_head=True)
    images = torch.randn(1, 3, 64, 64)
    source.eval(), target.eval()
    for a, b in zip(source(images), target(images)):
        assert torch.equal(a, b)


def test_distillation_adds_teacher_heatmap_targets(tmp_path, synthetic_root, tiny_arch):
    from litepose.models import LitePose

    teacher_arch = dict(TINY_ARCH, img_size=96)
    teacher = LitePose(teacher_arch, num_joints=17)
    (tmp_path / "teacher.json").write_text(json.dumps(teacher_arch))
    torch.save(teacher.state_dict(), tmp_path / "teacher.pth")
    cfg = tiny_cfg(tmp_path, synthetic_root, tiny_arch, "TRAIN.DISTILL_FACTOR", "2.0")
    trainer = Trainer(cfg, DistContext(), QUICKSTART, teacher=str(tmp_path / "teacher.pth"),
                      teacher_arch=str(tmp_path / "teacher.json"), show_progress=False)
    frozen = {k: v.clone() for k, v in trainer.teacher.state_dict().items()}
    raw = next(iter(trainer.train_loader))
    loss, terms, finite = trainer.train_step(raw)
    assert finite and {"distill_0", "distill_1"} <= set(terms)
    assert all(torch.equal(v, trainer.teacher.state_dict()[k]) for k, v in frozen.items())


def test_mixed_precision_step_on_cpu(tmp_path, synthetic_root, tiny_arch):
    trainer = Trainer(tiny_cfg(tmp_path, synthetic_root, tiny_arch, "TRAIN.AMP", "True", "TRAIN.CLIP_GRAD_NORM", "1.0"),
                      DistContext(), QUICKSTART, show_progress=False)
    dtypes = []
    trainer.model.final_refined[0].register_forward_hook(lambda m, i, o: dtypes.append(o.dtype))
    before = [p.detach().clone() for p in trainer.model.parameters()]
    loss, terms, finite = trainer.train_step(next(iter(trainer.train_loader)))
    assert finite and dtypes == [torch.bfloat16]
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.model.parameters()))


@pytest.mark.parametrize("model", ["fixed", "supernet"])
def test_torchrun_with_two_cpu_processes_completes_an_epoch(tmp_path, synthetic_root, tiny_arch, model):
    extra = TINY_SPACE + ["TRAIN.SANDWICH", "True"] if model == "supernet" else []
    opts = tiny_opts(tmp_path, synthetic_root, tiny_arch if model == "fixed" else "", "TRAIN.IMAGES_PER_GPU", "2",
                     *extra)
    result = run_script(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "dist_train.py",
                         "--cfg", QUICKSTART, "--no-progress", *opts], timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    cfg = load_config(QUICKSTART, opts)
    checkpoint = load_training_checkpoint(os.path.join(run_dirs(cfg, QUICKSTART)[0], "checkpoint.pth.tar"))
    assert checkpoint["epoch"] == 1 and checkpoint["world_size"] == 2
    assert "2 processes (gloo)" in result.stdout
    assert "val loss" in result.stdout
    assert result.stdout.count("val AP on the first 4 test images") == 1  # the first process only


def test_missing_dataset_path_is_one_line_error(tmp_path, tiny_arch):
    missing = tmp_path / "no_such_dataset"
    result = run_script(["dist_train.py", "--cfg", QUICKSTART, *tiny_opts(tmp_path, missing, tiny_arch,
                                                                          "DATASET.SYNTHETIC", "False")])
    assert result.returncode == 2
    assert one_line(result.stderr) == f"error: dataset root not found: {missing}"
    assert not (tmp_path / "output").exists() or not list((tmp_path / "output").rglob("*.pth.tar"))


def test_corrupt_image_is_one_line_error_when_no_skips_are_allowed(tmp_path, tiny_arch):
    root = tmp_path / "data"
    generate_synthetic_dataset(root, {"train": 4, "val": 2}, seed=5, show_progress=False)
    broken = sorted((root / "images" / "train").iterdir())[2]
    broken.write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
    result = run_script(["dist_train.py", "--cfg", QUICKSTART, *tiny_opts(tmp_path, root, tiny_arch, "WORKERS", "1",
                                                                          "DATASET.MAX_UNREADABLE_IMAGES", "0")])
    assert result.returncode == 2
    assert one_line(result.stderr) == (f"error: cannot decode image (corrupt or not an image): {broken} (unreadable "
                                       "images are skipped up to DATASET.MAX_UNREADABLE_IMAGES, 0)")
