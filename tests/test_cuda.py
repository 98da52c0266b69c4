"""Tests that need a CUDA GPU (marker ``cuda``): ``benchmarks/device_check.py`` runs them with
``python -m pytest -m cuda tests/test_cuda.py``. Each one skips with the reason on a machine
without a GPU, so the default run only collects them.

What one GPU can show: the model and the training targets on the device; a float16 AMP step and
the loss scaler's recovery from an overflow; NCCL, SyncBatchNorm and DistributedDataParallel under
``torchrun --nproc_per_node 1`` (with a single process SyncBatchNorm normalises by the local
statistics, so the cross-GPU reduction itself needs two GPUs); a checkpoint written and resumed
on CUDA; inference on CUDA equal to the CPU's within ``INFERENCE_TOLERANCE``.
"""

import copy
import json
import os

import pytest
import torch

from benchmarks.benchmark import resolve_models
from conftest import REPO, arch_path
from litepose.config import load_config
from litepose.data.build import build_dataset, build_loader, iterate_loader, set_loader_epoch
from litepose.data.targets import TargetConfig, prepare_batch
from litepose.loss import PoseLoss, total
from litepose.models import build_model, load_checkpoint
from litepose.train import Trainer, train
from litepose.train.checkpoint import load_training_checkpoint
from litepose.train.distributed import setup_distributed
from training_support import QUICKSTART, run_script, tiny_cfg, tiny_opts

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (torch.cuda.is_available() is False)"),
]

# Inference on CUDA against the CPU, float32 with TF32 off: the largest |cuda - cpu| over all
# outputs may be at most this fraction of the largest |cpu output| (float32 rounding through a few
# dozen layers is ~1e-6; 1e-4 leaves room for other reduction orders, catches any real difference).
INFERENCE_TOLERANCE = 1e-4


@pytest.fixture
def no_tf32():
    """cuDNN and cuBLAS in full float32 (PyTorch lets cuDNN convolutions use TF32 by default)."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def _cuda_cfg(tmp_path, synthetic_root, tiny_arch, *extra):
    return tiny_cfg(tmp_path, synthetic_root, tiny_arch, "DEVICE", "cuda", *extra)


def test_model_and_training_targets_on_the_device(synthetic_root):
    cfg = load_config(QUICKSTART, ["DATASET.ROOT", str(synthetic_root), "DEVICE", "cuda", "WORKERS", "0"])
    loader = build_loader(build_dataset(cfg, 256, "train", augment=True), 2, 0, shuffle=False, seed=0,
                          pin_memory=True)
    set_loader_epoch(loader, 0)
    raw = next(iterate_loader(loader))
    targets = TargetConfig.from_config(cfg)
    on_cpu = prepare_batch(raw, targets, 256, "cpu")
    on_gpu = prepare_batch(raw, targets, 256, "cuda")
    assert on_gpu.images.is_cuda and all(h.is_cuda for h in on_gpu.heatmaps)
    assert [h.shape[-1] for h in on_gpu.heatmaps] == [64, 128]
    torch.testing.assert_close(on_gpu.images.cpu(), on_cpu.images, rtol=1e-5, atol=1e-5)
    for gpu, cpu in zip(on_gpu.heatmaps, on_cpu.heatmaps):
        torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-4, atol=1e-5)
        assert float(cpu.max()) > 0.5  # there are people, so the comparison is not of empty maps
    for gpu, cpu in zip(on_gpu.masks, on_cpu.masks):
        torch.testing.assert_close(gpu.cpu(), cpu)
    for gpu, cpu in zip(on_gpu.joints, on_cpu.joints):
        assert torch.equal(gpu.cpu(), cpu)

    model = build_model(cfg, str(arch_path("XS"))).cuda().train()
    outputs = model(on_gpu.images)
    assert [tuple(o.shape) for o in outputs] == [(2, 34, 64, 64), (2, 17, 128, 128)]
    assert all(o.is_cuda and o.dtype == torch.float32 for o in outputs)
    loss = total(PoseLoss.from_config(cfg)(outputs, on_gpu.heatmaps, on_gpu.masks, on_gpu.joints))
    assert loss.is_cuda and torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is not None and p.grad.is_cuda for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("clip", ["0", "1.0"])
def test_amp_step_runs_in_float16_and_an_overflow_is_skipped_with_a_lower_scale(tmp_path, synthetic_root, tiny_arch,
                                                                                 clip):
    cfg = _cuda_cfg(tmp_path, synthetic_root, tiny_arch, "TRAIN.AMP", "True", "TRAIN.CLIP_GRAD_NORM", clip)
    trainer = Trainer(cfg, setup_distributed(cfg), QUICKSTART, show_progress=False)
    assert trainer.device.type == "cuda" and trainer.scaler.is_enabled() and trainer.amp_dtype == torch.float16
    dtypes = []
    trainer.model.final_refined[0].register_forward_hook(lambda module, inputs, output: dtypes.append(output.dtype))
    set_loader_epoch(trainer.train_loader, 0)
    raw = next(iterate_loader(trainer.train_loader))

    # An infinite gradient (as a float16 overflow gives): the scaler skips the update, halves its scale.
    scale = trainer.scaler.get_scale()
    parameter = next(p for p in trainer.model.parameters() if p.requires_grad)
    handle = parameter.register_hook(lambda grad: torch.full_like(grad, float("inf")))
    before = [p.detach().clone() for p in trainer.model.parameters()]
    loss, _, applied = trainer.train_step(dict(raw))
    handle.remove()
    assert dtypes == [torch.float16]
    assert applied and torch.isfinite(loss)  # the loss was finite: the trainer does not halt for an overflow
    assert all(torch.equal(a, b) for a, b in zip(before, trainer.model.parameters()))
    assert trainer.scaler.get_scale() == scale * trainer.scaler.get_backoff_factor()

    # Then training goes on: the next steps update the weights at the lowered scale.
    for _ in range(3):
        loss, _, applied = trainer.train_step(dict(raw))
        assert applied and torch.isfinite(loss)
        if any(not torch.equal(a, b) for a, b in zip(before, trainer.model.parameters())):
            break
    else:
        pytest.fail(f"no update in 3 steps after the overflow (scale {trainer.scaler.get_scale()})")
    assert trainer.scaler.get_scale() <= scale * trainer.scaler.get_backoff_factor()
    trainer.writer.close()


SYNC_BN_SCRIPT = """
import copy, json, os, sys
import torch, torch.distributed as dist, torch.nn as nn
from litepose.config import load_config
from litepose.models import build_model

local_rank = int(os.environ["LOCAL_RANK"])
device = torch.device("cuda", local_rank)
torch.cuda.set_device(device)
dist.init_process_group("nccl", device_id=device)
assert dist.get_backend() == "nccl" and dist.get_world_size() == 1, (dist.get_backend(), dist.get_world_size())
torch.backends.cudnn.allow_tf32 = False
cfg = load_config(sys.argv[1], ["MODEL.ARCH", sys.argv[2], "DEVICE", "cuda"])
plain = build_model(cfg).to(device).train()
synced = nn.SyncBatchNorm.convert_sync_batchnorm(copy.deepcopy(plain))
count = sum(isinstance(m, nn.SyncBatchNorm) for m in synced.modules())
assert count == sum(isinstance(m, nn.BatchNorm2d) for m in plain.modules()) > 0
ddp = nn.parallel.DistributedDataParallel(synced, device_ids=[local_rank])
x = torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(0)).to(device)
outputs, reference = ddp(x), plain(x)
sum(o.float().square().mean() for o in outputs).backward()
sum(o.float().square().mean() for o in reference).backward()
out_diff = max((a - b).abs().max().item() for a, b in zip(outputs, reference))
grad_diff = max((a.grad - b.grad).abs().max().item() for a, b in zip(synced.parameters(), plain.parameters()))
stat_diff = max((a - b).abs().max().item() for a, b in zip(synced.buffers(), plain.buffers()) if a.is_floating_point())
probe = torch.full((1,), 3.0, device=device)
dist.all_reduce(probe)
dist.barrier(device_ids=[local_rank])
dist.destroy_process_group()
print(json.dumps(dict(sync_bn=count, out=out_diff, grad=grad_diff, stats=stat_diff, all_reduce=probe.item())))
"""


def test_sync_batchnorm_under_torchrun_with_nccl(tmp_path, tiny_arch):
    script = tmp_path / "sync_bn.py"
    script.write_text(SYNC_BN_SCRIPT)
    result = run_script(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1", str(script),
                         QUICKSTART, str(tiny_arch)], timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["sync_bn"] > 0 and report["all_reduce"] == 3.0
    # One process: SyncBatchNorm and DDP (gradients all-reduced over NCCL) equal plain training.
    assert report["out"] < 1e-5 and report["grad"] < 1e-5 and report["stats"] < 1e-6, report


def test_dist_train_under_torchrun_trains_on_the_gpu(tmp_path, synthetic_root, tiny_arch):
    opts = tiny_opts(tmp_path, synthetic_root, tiny_arch, "DEVICE", "cuda", "TRAIN.AMP", "True", "MODEL.SYNC_BN",
                     "True")
    result = run_script(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1", "dist_train.py",
                         "--cfg", QUICKSTART, "--no-progress", *opts], timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "device: cuda:0" in result.stdout
    assert "val loss" in result.stdout
    summary_dir = os.path.join(str(tmp_path / "output"), "coco_kpt", "pose_mobilenet", "quickstart")
    checkpoint = load_training_checkpoint(os.path.join(summary_dir, "checkpoint.pth.tar"))
    assert checkpoint["epoch"] == 1 and checkpoint["scaler"] is not None


def test_checkpoint_saved_on_cuda_resumes_on_cuda(tmp_path, synthetic_root, tiny_arch):
    first = train(_cuda_cfg(tmp_path, synthetic_root, tiny_arch, "TRAIN.AMP", "True", "TRAIN.VAL_FREQ", "0"),
                  QUICKSTART, show_progress=False)
    saved = load_training_checkpoint(first["checkpoint"])  # read onto the CPU, weights_only
    assert saved["epoch"] == 1 and saved["scaler"] is not None and "cuda" in saved["rng"]

    cfg = _cuda_cfg(tmp_path, synthetic_root, tiny_arch, "TRAIN.AMP", "True", "TRAIN.VAL_FREQ", "0",
                    "TRAIN.END_EPOCH", "2")
    trainer = Trainer(cfg, setup_distributed(cfg), QUICKSTART, show_progress=False)
    assert trainer.begin_epoch == 1
    state = trainer.model.state_dict()
    for key, value in saved["state_dict"].items():
        assert state[key].is_cuda and torch.equal(state[key].cpu(), value), key
    resumed = trainer.optimizer.state_dict()["state"]
    assert resumed.keys() == saved["optimizer"]["state"].keys() and resumed
    for index, entry in saved["optimizer"]["state"].items():
        for name, value in entry.items():
            if torch.is_tensor(value) and value.dim() > 0:
                assert resumed[index][name].is_cuda and torch.equal(resumed[index][name].cpu(), value), (index, name)
    assert trainer.scaler.get_scale() == saved["scaler"]["scale"]
    torch.testing.assert_close(torch.cuda.get_rng_state(), saved["rng"]["cuda"][0])

    summary = trainer.fit()
    assert load_training_checkpoint(summary["checkpoint"])["epoch"] == 2
    cpu_model = build_model(cfg)
    load_checkpoint(cpu_model, summary["final_state"])  # a CUDA run's weights load on the CPU
    assert all(torch.isfinite(p).all() for p in cpu_model.parameters())


@pytest.mark.parametrize("name", ["LitePose-XS", "HigherHRNet-W24", "EfficientHRNet-H-1"])
def test_inference_on_cuda_equals_the_cpu(name, no_tf32):
    from litepose.deploy import example_input, fuse_bn
    from litepose.deploy.latency import realistic_weights_

    entry = resolve_models([name])[0]
    cfg = load_config(os.path.join(REPO, entry.config.format(dataset="crowd_pose")))
    model = build_model(cfg, os.path.join(REPO, entry.arch) if entry.arch else None)
    model = realistic_weights_(model, 256).eval()
    x = example_input(256)
    for network in (model, fuse_bn(model)):  # as trained, and as exported (BN folded)
        with torch.inference_mode():
            expected = network(x)
            actual = copy.deepcopy(network).cuda()(x.cuda())
        scale = max(float(e.abs().max()) for e in expected)
        diff = max(float((a.cpu() - e).abs().max()) for a, e in zip(actual, expected))
        assert scale > 0 and diff <= INFERENCE_TOLERANCE * scale, (name, diff, scale)
