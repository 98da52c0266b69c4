#!/usr/bin/env python
"""Re-estimate the BatchNorm statistics of a network on training images and save it.

    # a member of a trained supernet: extracted, then recalibrated
    python tools/calibrate_bn.py --cfg experiments/crowd_pose/mobilenet/supermobile.yaml \
        --superconfig mobile_configs/search-S.json TEST.MODEL_FILE supernet.pth --images 2000 --output s.pth
    # an extracted or fixed network
    python tools/calibrate_bn.py --cfg experiments/crowd_pose/mobilenet/mobile.yaml \
        --superconfig mobile_configs/search-S.json TEST.MODEL_FILE s.pth --images 2000 --output s_bn.pth

Statistics a supernet shares between its members are wrong for any one of them; the
weights are not changed. The output is a plain state_dict for the fixed network
(``valid.py --cfg .../mobile.yaml --superconfig ARCH.json TEST.MODEL_FILE OUT``).
"""

from litepose.cli import SEED, config_parser, int_range, load_cli_config, parse_args, run_cli, run_inputs


def main(argv=None):
    from litepose.arch import default_input_size, describe_arch
    from litepose.errors import ConfigError
    from litepose.evaluation.runner import evaluate
    from litepose.models import load_model
    from litepose.search.scoring import calibrate_network
    from litepose.utils.device import resolve_device
    from litepose.utils.io import atomic_torch_save, check_output_file

    parser = config_parser(__doc__.splitlines()[0])
    parser.add_argument("--superconfig", metavar="ARCH.json", help="the architecture (required for a supernet)")
    parser.add_argument("--images", type=int_range(1, 1_000_000),
                        default=2000, help="training images to estimate on (default 2000)")
    parser.add_argument("--batch-size", type=int_range(1, 4096), default=None, help="default TRAIN.IMAGES_PER_GPU")
    parser.add_argument("--val-images", type=int_range(0, 1_000_000), default=0,
                        help="also report val AP on this many images before and after (default: skip)")
    parser.add_argument("--output", required=True, help="where to write the calibrated state_dict")
    parser.add_argument("--force", action="store_true", help="overwrite --output if it exists")
    parser.add_argument("--seed", type=SEED, default=0)
    args = parse_args(parser, argv)

    cfg = load_cli_config(args)
    from litepose.data.build import single_opencv_thread

    single_opencv_thread()  # BN recalibration's loader forks workers (process-wide: the script's call)
    if not cfg.TEST.MODEL_FILE:
        raise ConfigError("no checkpoint: give TEST.MODEL_FILE path/to/weights.pth")
    if cfg.MODEL.NAME == "pose_supermobilenet" and not args.superconfig:
        raise ConfigError("a supernet config needs --superconfig: the member to calibrate")
    check_output_file(args.output, args.force, "--output", inputs=run_inputs(args, cfg))
    device = resolve_device(cfg.DEVICE)

    model = load_model(cfg, args.superconfig)  # a supernet: its member of that architecture
    arch = getattr(model, "arch", None)
    size = default_input_size(cfg, model)
    if arch:
        print(f"network: {describe_arch(arch)}")

    def report(when):
        if args.val_images:
            ap = evaluate(cfg, model, limit=args.val_images, device=device, progress=False).ap
            print(f"val AP on {args.val_images} images {when} recalibration: {ap:.4f}")

    report("before")
    seen = calibrate_network(cfg, model, size, args.images, args.batch_size, device, args.seed, progress=True)
    print(f"recalibrated BatchNorm statistics on {seen} training images at {size}x{size}")
    report("after")
    atomic_torch_save({k: v.detach().cpu() for k, v in model.state_dict().items()}, args.output)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    run_cli(main)
