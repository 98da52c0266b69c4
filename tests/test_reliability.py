"""Reliability: kills, signals, bad data, bad configuration, numerics and dead distributed
workers never cost more than the work since the last checkpoint, and say what went wrong in
one line."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

from benchmarks.crash_drill import run_crash_drill
from benchmarks.loopback_restart import children, rank_of, run_loopback_restart
from conftest import REPO
from litepose.config import load_config
from litepose.data.build import build_dataset
from litepose.data.synthetic import generate_synthetic_dataset
from litepose.errors import DataError
from litepose.train import Trainer, TrainingInterrupted, run_dirs, train
from litepose.train.checkpoint import load_training_checkpoint
from litepose.train.distributed import DistContext, attempt_store
from training_support import QUICKSTART, TINY_SPACE, one_line, run_script, tiny_cfg, tiny_opts

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def damaged_root(tmp_path):
    """Six training images: one not an image at all, one truncated JPEG, one listed but deleted."""
    root = tmp_path / "damaged"
    generate_synthetic_dataset(root, {"train": 6, "val": 2}, seed=5, show_progress=False)
    images = sorted((root / "images" / "train").iterdir())
    images[1].write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
    data = images[3].read_bytes()
    images[3].write_bytes(data[: len(data) // 2])
    images[4].unlink()
    return root, images[1], images[3], images[4]


def test_unreadable_training_images_are_skipped_with_a_warning_naming_each(tmp_path, tiny_arch, damaged_root):
    root, corrupt, truncated, missing = damaged_root
    val_corrupt = sorted((root / "images" / "val").iterdir())[0]
    val_corrupt.write_bytes(b"GIF89a broken")
    result = run_script(["dist_train.py", "--cfg", QUICKSTART, "--no-progress",
                         *tiny_opts(tmp_path, root, tiny_arch, "WORKERS", "1", "TRAIN.IMAGES_PER_GPU", "2")])
    assert result.returncode == 0, result.stderr
    assert (f"validation loss: skipped an unreadable image: cannot decode image (corrupt or not an image): "
            f"{val_corrupt}") in result.stderr
    assert f"left out of the training set: image not found: {missing}" in result.stderr
    assert f"cannot decode image (corrupt or not an image): {corrupt}" in result.stderr
    assert f"truncated image (no JPEG end marker): {truncated}" in result.stderr
    assert "3 unreadable image(s) skipped so far" in result.stdout


def test_more_unreadable_images_than_the_limit_stop_with_one_line(tmp_path, tiny_arch, damaged_root):
    root, corrupt, truncated, missing = damaged_root
    result = run_script(["dist_train.py", "--cfg", QUICKSTART, "--no-progress",
                         *tiny_opts(tmp_path, root, tiny_arch, "WORKERS", "1", "TRAIN.IMAGES_PER_GPU", "2",
                                    "DATASET.MAX_UNREADABLE_IMAGES", "1")])
    assert result.returncode == 2
    *warnings, error = result.stderr.strip().splitlines()
    assert warnings == [f"left out of the training set: image not found: {missing}"]  # one missing file is allowed
    assert re.fullmatch(r"error: [23] unreadable training images, more than DATASET.MAX_UNREADABLE_IMAGES 1; the "
                        r"last: (cannot decode image \(corrupt or not an image\)|truncated image \(no JPEG end "
                        r"marker\)): .*", error), error
    assert error.endswith((str(corrupt), str(truncated)))

    # Missing files count up front: with none allowed the run stops before training.
    cfg = tiny_cfg(tmp_path, root, tiny_arch, "DATASET.MAX_UNREADABLE_IMAGES", "0")
    with pytest.raises(DataError, match=f"image not found: {missing}"):
        build_dataset(cfg, 64, "train")


def test_images_without_people_and_joints_outside_the_image_train(tmp_path, tiny_arch):
    root = tmp_path / "odd"
    generate_synthetic_dataset(root, {"train": 4, "val": 2}, seed=3, show_progress=False)
    ann_file = root / "annotations" / "person_keypoints_train.json"
    data = json.loads(ann_file.read_text())
    first = data["images"][0]["id"]
    data["annotations"] = [a for a in data["annotations"] if a["image_id"] != first]  # no people at all
    person = next(a for a in data["annotations"])
    person["keypoints"][0:3] = [-500.0, 40.0, 2]  # far outside the image
    person["keypoints"][3:6] = [30.0, 1e5, 2]
    ann_file.write_text(json.dumps(data))
    cfg = tiny_cfg(tmp_path, root, tiny_arch, "TRAIN.IMAGES_PER_GPU", "2", "TRAIN.VAL_FREQ", "0")
    trainer = Trainer(cfg, DistContext(), QUICKSTART, show_progress=False)
    assert len(trainer.train_loader.dataset) == 3  # the image without people is not a training image
    for batch in trainer.train_loader:
        loss, terms, applied = trainer.train_step(batch)
        assert applied and torch.isfinite(loss)


def test_output_folder_not_writable_is_one_line_error_before_any_work(tmp_path, synthetic_root, tiny_arch):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    result = run_script(["dist_train.py", "--cfg", QUICKSTART,
                         *tiny_opts(tmp_path, synthetic_root, tiny_arch, "OUTPUT_DIR", str(blocker / "out"))])
    assert result.returncode == 2
    assert one_line(result.stderr).startswith(f"error: output folder is not writable: {blocker / 'out'}")


def test_missing_superconfig_fails_before_the_dataset_is_generated(tmp_path, tiny_arch):
    root = tmp_path / "not_generated_yet"
    result = run_script(["dist_train.py", "--cfg", QUICKSTART, "--superconfig", str(tmp_path / "absent.json"),
                         *tiny_opts(tmp_path, root, tiny_arch)])
    assert result.returncode == 2
    assert one_line(result.stderr) == f"error: architecture file not found: {tmp_path / 'absent.json'}"
    assert not root.exists()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_stop_signal_saves_a_checkpoint_and_the_same_command_resumes(tmp_path, synthetic_root, tiny_arch, signum):
    opts = tiny_opts(tmp_path, synthetic_root, tiny_arch, "TRAIN.END_EPOCH", "400", "TRAIN.VAL_FREQ", "0",
                     "WORKERS", "1", "TRAIN.IMAGES_PER_GPU", "2")
    command = [sys.executable, "dist_train.py", "--cfg", QUICKSTART, "--no-progress", *opts]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    log = os.path.join(run_dirs(load_config(QUICKSTART, opts), QUICKSTART)[0], "train.log")
    deadline = time.time() + 120
    while process.poll() is None and time.time() < deadline and "epoch 2/400" not in _read(log):
        time.sleep(0.05)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signum, stderr
    name = signal.Signals(signum).name
    assert f"{name} received: stopping after this step with a checkpoint" in stderr
    assert re.fullmatch(rf"stopped: {name} (at epoch \d+ step \d+/\d+|after epoch \d+): checkpoint saved to "
                        r".*checkpoint.pth.tar; run the same command to resume",
                        one_line(stderr.split("(send it again to stop at once)")[-1])), stderr
    checkpoint = load_training_checkpoint(os.path.join(os.path.dirname(log), "checkpoint.pth.tar"))
    assert checkpoint["epoch"] >= 2

    result = run_script(["dist_train.py", "--cfg", QUICKSTART, "--no-progress",
                         *opts, "TRAIN.END_EPOCH", str(checkpoint["epoch"] + 1)])
    assert result.returncode == 0, result.stderr
    where = f"continuing at epoch {checkpoint['epoch'] + 1}" + (f" step {checkpoint['step'] + 1}" if checkpoint["step"] else "")
    assert where in result.stdout


def _read(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return ""


def test_resume_from_a_mid_epoch_stop_gives_the_weights_of_an_uninterrupted_run(tmp_path, synthetic_root):
    """The supernet (its architecture sampler must be resumed too), stopped twice mid-epoch."""
    def cfg(folder):
        return load_config(QUICKSTART, tiny_opts(folder, synthetic_root, "", "TRAIN.END_EPOCH", "2", "TRAIN.VAL_FREQ",
                                                 "0", "TRAIN.IMAGES_PER_GPU", "2", "TRAIN.CHECKPOINT_STEPS", "2",
                                                 *TINY_SPACE))

    straight = train(cfg(tmp_path / "a"), QUICKSTART, show_progress=False)
    for stop_after in (3, 2):  # steps of this start; both stops come in the middle of epoch 1
        trainer = Trainer(cfg(tmp_path / "b"), DistContext(), QUICKSTART, show_progress=False)
        original, calls = trainer.train_step, []

        def step(batch, trainer=trainer, original=original, calls=calls, stop_after=stop_after):
            calls.append(1)
            if len(calls) == stop_after:
                trainer.stop_signal = signal.SIGTERM
            return original(batch)

        trainer.train_step = step
        with pytest.raises(TrainingInterrupted, match="SIGTERM at epoch"):
            trainer.fit()
        assert load_training_checkpoint(trainer.checkpoint_path)["step"] > 0
    resumed = train(cfg(tmp_path / "b"), QUICKSTART, show_progress=False)
    a = torch.load(straight["final_state"], weights_only=True)
    b = torch.load(resumed["final_state"], weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)


KILL_DURING_SAVE = """
import os, signal, sys, torch
from litepose.utils.io import atomic_torch_save

class DieWhilePickled:
    def __reduce__(self):
        os.kill(os.getpid(), signal.SIGKILL)

atomic_torch_save({"weights": torch.ones(1000), "half_written": DieWhilePickled()}, sys.argv[1])
"""


def test_kill_during_a_checkpoint_write_keeps_the_previous_checkpoint(tmp_path, synthetic_root, tiny_arch):
    cfg = tiny_cfg(tmp_path, synthetic_root, tiny_arch, "TRAIN.VAL_FREQ", "0")
    checkpoint = train(cfg, QUICKSTART, show_progress=False)["checkpoint"]
    before = open(checkpoint, "rb").read()
    result = subprocess.run([sys.executable, "-c", KILL_DURING_SAVE, checkpoint], cwd=REPO, capture_output=True)
    assert result.returncode == -signal.SIGKILL
    leftovers = [n for n in os.listdir(os.path.dirname(checkpoint)) if n.endswith(".tmp")]
    assert leftovers  # the kill did come in the middle of the write
    assert open(checkpoint, "rb").read() == before
    resumed = Trainer(tiny_cfg(tmp_path, synthetic_root, tiny_arch, "TRAIN.END_EPOCH", "2", "TRAIN.VAL_FREQ", "0"),
                      DistContext(), QUICKSTART, show_progress=False)
    assert resumed.begin_epoch == 1
    assert not [n for n in os.listdir(os.path.dirname(checkpoint)) if n.endswith(".tmp")]  # cleaned up


@pytest.mark.slow  # about 40 s on 2 busy cores: 1 + 4 training runs in subprocesses
def test_crash_drill_random_sigkills_end_with_the_uninterrupted_weights(tmp_path):
    report = run_crash_drill(tmp_path / "drill", kills=3, seed=3, epochs=6, train_images=12)
    assert len(report.kills) >= 2, report.table()
    assert report.identical, report.table()
    assert report.attempts[-1].killed_after_s is None


def test_amp_overflow_steps_are_skipped_and_the_loss_scale_recovers(tmp_path, synthetic_root, tiny_arch):
    trainer = Trainer(tiny_cfg(tmp_path, synthetic_root, tiny_arch, "TRAIN.AMP", "True"), DistContext(), QUICKSTART,
                      show_progress=False)
    # float16 with dynamic loss scaling is the CUDA path; a CPU GradScaler exercises the same logic.
    trainer.scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 16, growth_interval=1)
    parameter = next(trainer.model.parameters())
    overflow = {"on": True}
    parameter.register_hook(lambda grad: grad * float("inf") if overflow["on"] else grad)
    batch = next(iter(trainer.train_loader))
    before = [p.detach().clone() for p in trainer.model.parameters()]
    loss, _, applied = trainer.train_step(dict(batch))
    assert applied and torch.isfinite(loss)
    assert all(torch.equal(a, b) for a, b in zip(before, trainer.model.parameters()))  # the update was skipped
    assert trainer.scaler.get_scale() == 2.0 ** 15
    overflow["on"] = False
    trainer.train_step(dict(batch))
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.model.parameters()))
    assert trainer.scaler.get_scale() == 2.0 ** 16  # grows back after a good step


@pytest.mark.slow  # a drill: two torchrun runs with a dead or hung worker (20 to 60 s each)
@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="finds torchrun's workers through /proc")
@pytest.mark.parametrize("fault", ["SIGKILL", "SIGSTOP"])
def test_a_dead_or_hung_torchrun_worker_stops_the_run_and_torchrun_resumes_it(tmp_path, synthetic_root, tiny_arch,
                                                                              fault):
    opts = tiny_opts(tmp_path, synthetic_root, tiny_arch, "TRAIN.END_EPOCH", "400", "TRAIN.VAL_FREQ", "0",
                     "TRAIN.IMAGES_PER_GPU", "2", "DIST_TIMEOUT", "10")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "dist_train.py", "--cfg", QUICKSTART, "--no-progress", *opts]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env=dict(os.environ, OMP_NUM_THREADS="1"))
    checkpoint = os.path.join(run_dirs(load_config(QUICKSTART, opts), QUICKSTART)[0], "checkpoint.pth.tar")
    deadline = time.time() + 120
    while process.poll() is None and time.time() < deadline and not os.path.exists(checkpoint):
        time.sleep(0.05)
    workers = [pid for pid in children(process.pid) if rank_of(pid) == 1]
    assert workers, "no worker of rank 1 found"
    os.kill(workers[0], getattr(signal, fault))
    faulted = time.time()
    try:
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode != 0
    assert time.time() - faulted < 60  # not hanging: a dead peer is seen at once, a hung one after DIST_TIMEOUT
    saved = load_training_checkpoint(checkpoint)

    resumed = run_script(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "dist_train.py",
                          "--cfg", QUICKSTART, "--no-progress", *opts, "TRAIN.END_EPOCH", str(saved["epoch"] + 1)],
                         timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"continuing at epoch {saved['epoch'] + 1}" in resumed.stdout



def _gloo_attempt(port, delays, timeout):
    """One attempt of a Gloo group of ``len(delays)`` threads on the store at ``port``, process ``r``
    starting after ``delays[r]`` seconds: what each one's all-reduce of ``r + 1`` gave, or its error."""
    import threading

    import torch.distributed as dist

    results = {}

    def run(rank):
        time.sleep(delays[rank])
        try:
            store = dist.TCPStore("127.0.0.1", port, is_master=False, timeout=timeout)
            group = dist.ProcessGroupGloo(attempt_store(store, rank, len(delays), timeout), rank, len(delays), timeout)
            value = torch.tensor([rank + 1.0])
            group.allreduce([value]).wait()
            results[rank] = value.item()
        except Exception as exc:  # reported in the assertion
            results[rank] = repr(exc)[:300]

    threads = [threading.Thread(target=run, args=(rank,)) for rank in range(len(delays))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout.total_seconds() * 6 + max(delays))
    return results


def test_a_restarted_process_group_connects_on_the_store_its_killed_attempt_used():
    """torchrun's c10d rendezvous hands every restart the same store, where the killed attempt's
    keys remain (each process's Gloo address, NCCL's id): a restarted process that read a peer's
    old address failed, and cost one more restart. Each attempt agrees on fresh keys first, so
    the group connects whichever process starts first."""
    import datetime

    import torch.distributed as dist

    timeout = datetime.timedelta(seconds=10)
    server = dist.TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False, timeout=timeout)
    total = float(sum(rank + 1 for rank in range(3)))
    for delays in [(0, 0, 0), (0, 0.5, 0.25), (0.5, 0, 0.25), (0.25, 0.5, 0)]:
        assert _gloo_attempt(server.port, delays, timeout) == {rank: total for rank in range(3)}, delays


def test_a_process_missing_from_the_attempt_is_named_after_the_timeout():
    import datetime

    import torch.distributed as dist

    timeout = datetime.timedelta(seconds=0.2)
    store = dist.HashStore()
    store.set_timeout(timeout)
    with pytest.raises(TimeoutError, match=r"process\(es\) of rank \[1, 2\] did not join within DIST_TIMEOUT 0.2 s"):
        attempt_store(store, 0, 3, timeout)
    with pytest.raises(TimeoutError, match=r"the process of rank 0 did not answer within DIST_TIMEOUT 0.2 s"):
        attempt_store(store, 1, 3, timeout)


@pytest.mark.slow  # two torchrun agents, a restart and the rest of the run: 15 to 40 s on 2 cores (100 s at load 45)
@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="finds torchrun's workers through /proc")
def test_two_torchrun_agents_on_loopback_restart_a_killed_worker_once_and_finish(tmp_path):
    """Two agents (``--nnodes 2``, c10d rendezvous on 127.0.0.1): a worker SIGKILLed after the
    first checkpoint makes torchrun restart the group once, which resumes from the checkpoint and
    finishes the run.

    ``--max-restarts 1`` is what one kill needs: the killed worker's agent spends one restart; the
    other spends one when its worker's collective fails first (the dead peer's connection
    closes), or none when it sees the first agent waiting at the rendezvous first (torchrun then
    restarts a healthy group without counting it). A start that cannot connect to its peers would
    cost one more on each agent (as the killed attempt's keys, left in the store torchrun keeps
    across restarts, did before ``attempt_store``)."""
    run = run_loopback_restart(tmp_path, max_restarts=1, kill_rank=1, epochs=6, dist_timeout=20)
    assert [a.returncode for a in run.agents] == [0, 0], run.line() + "\n" + run.tail()
    assert run.checkpoint_at_kill < run.epochs  # the run was not over yet
    # The group started twice: from the beginning, then from the checkpoint on disk when the workers
    # stopped (the one read at the kill, or one the surviving rank wrote right after it).
    assert len(run.starts) == 2 and run.starts[0] == 0 and run.checkpoint_at_kill < run.starts[1] <= run.epochs, \
        run.line()
    assert sorted(a.counted_restarts + a.free_restarts for a in run.agents) == [1, 1], run.line()
    assert any(-signal.SIGKILL in a.worker_exits for a in run.agents), run.line()
    assert sum(a.failed_connects for a in run.agents) == 0, run.line()
    assert run.final_epoch == run.epochs
