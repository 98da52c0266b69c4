"""Train a LitePose network or supernet: one process on CPU or a GPU, or many through torchrun.

    litepose train --cfg experiments/crowd_pose/mobilenet/supermobile.yaml
    litepose train --cfg experiments/crowd_pose/mobilenet/mobile.yaml --superconfig mobile_configs/search-XS.json
    torchrun --nproc_per_node 8 -m litepose train --cfg ... [KEY VALUE ...]

--superconfig gives a fixed network its architecture (or fixes the supernet's); --teacher and
--teacher-arch add the heatmaps of a trained LitePose as extra targets (distillation). Outputs go
to OUTPUT_DIR/<dataset>/<model>/<cfg name>[-<arch name>]/; a run resumes from its checkpoint
there (AUTO_RESUME).

The same command as a script, from the repository: ``python dist_train.py ...``.
"""

import os
import shlex
import subprocess
import sys

from litepose.cli import config_parser, load_cli_config, parse_args


def git_state():
    """The commit of the checkout this code runs from and whether it has uncommitted changes
    ('unknown' outside git, as in an installed wheel): git answers from any folder of a checkout,
    so this does not depend on where the module sits in it."""
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
    # The command as it was typed, however it started (python dist_train.py, litepose train, python -m litepose
    # train, torchrun): the interpreter's own arguments (3.10+), else what this script was given.
    command = [sys.executable, *(getattr(sys, "orig_argv", None) or [None, *sys.argv])[1:]]
    run_info = {"command": " ".join(shlex.quote(part) for part in command), "git": git_state()}
    train(cfg, cfg_path=args.cfg, superconfig=args.superconfig, teacher=args.teacher,
          teacher_arch=args.teacher_arch, show_progress=not args.no_progress, run_info=run_info)
    return 0
