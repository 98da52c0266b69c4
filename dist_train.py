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

from litepose.utils.cli import config_parser, load_cli_config, parse_args, run_cli


def main(argv=None):
    parser = config_parser(__doc__.splitlines()[0])
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
    train(cfg, cfg_path=args.cfg, superconfig=args.superconfig, teacher=args.teacher,
          teacher_arch=args.teacher_arch, show_progress=not args.no_progress)
    return 0


if __name__ == "__main__":
    run_cli(main)
