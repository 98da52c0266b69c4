#!/usr/bin/env python
"""Train a LitePose network or supernet: one process on CPU or a GPU, or many through torchrun.

    python dist_train.py --cfg experiments/crowd_pose/mobilenet/supermobile.yaml
    python dist_train.py --cfg experiments/crowd_pose/mobilenet/mobile.yaml --superconfig mobile_configs/search-XS.json
    torchrun --nproc_per_node 8 dist_train.py --cfg ... [KEY VALUE ...]

--superconfig gives a fixed network its architecture (or fixes the supernet's); --teacher and
--teacher-arch add the heatmaps of a trained LitePose as extra targets (distillation). Outputs go
to OUTPUT_DIR/<dataset>/<model>/<cfg name>[-<arch name>]/; a run resumes from its checkpoint
there (AUTO_RESUME).
"""

import os
import shlex
import subprocess
import sys

from litepose.cli import config_parser, load_cli_config, parse_args, run_cli


def git_state():
    """The commit of this checkout and whether it has uncommitted changes ('unknown' outside git)."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                                timeout=10).stdout.strip()
        changed = subprocess.run(["git", "status", "--porcelain"], cwd=here, capture_output=True, text=True,
                                 timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if not commit:
        return "unknown"
    return commit + (" with uncommitted changes" if changed else "")


def main(argv=None):
    parser = config_parser(__doc__.splitlines()[0], example="TRAIN.IMAGES_PER_GPU 8 TRAIN.END_EPOCH 100")
    parser.add_argument("--superconfig", metavar="ARCH.json",
                        help="architecture of the fixed network, or the one the supernet is fixed to")
    parser.add_argument("--teacher", metavar="PATH", help="teacher checkpoint for distillation")
    parser.add_argument("--teacher-arch", metavar="ARCH.json", help="architecture of the teacher")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (logs only)")
    args = parse_args(parser, argv)
    if bool(args.teacher) != bool(args.teacher_arch):
        parser.error("--teacher and --teacher-arch go together")
    cfg = load_cli_config(args)

    from litepose.train import train
    from litepose.train.process import configure_process
    from litepose.utils.device import resolve_device

    configure_process(cfg, resolve_device(cfg.DEVICE).type)
    run_info = {"command": " ".join(shlex.quote(part) for part in [sys.executable, *sys.argv]), "git": git_state()}
    train(cfg, cfg_path=args.cfg, superconfig=args.superconfig, teacher=args.teacher,
          teacher_arch=args.teacher_arch, show_progress=not args.no_progress, run_info=run_info)
    return 0


if __name__ == "__main__":
    run_cli(main)
