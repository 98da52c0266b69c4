#!/usr/bin/env python
"""Count MACs and parameters of a model and show its output shapes.

    python tools/profile_model.py --cfg experiments/crowd_pose/mobilenet/mobile.yaml \
        --superconfig mobile_configs/search-S.json [--input-size 512]

The input is square, at the architecture's img_size unless --input-size is given
(models without an architecture file use DATASET.INPUT_SIZE).
"""

from litepose.cli import config_parser, input_size, load_cli_config, parse_args, run_cli


def main(argv=None):
    from litepose.arch import default_input_size, describe_arch, model_arch
    from litepose.models import build_model, profile_model

    parser = config_parser(__doc__.splitlines()[0])
    parser.add_argument("--superconfig", metavar="ARCH.json", help="architecture of a LitePose model")
    parser.add_argument("--input-size", type=input_size, default=None, help="square input size in pixels")
    args = parse_args(parser, argv)
    cfg = load_cli_config(args)
    model = build_model(cfg, args.superconfig)
    arch = model_arch(model)
    size = default_input_size(cfg, model, args.input_size)
    if size <= 0 or size % 32:
        parser.error(f"--input-size must be a positive multiple of 32, got {size}")
    profile = profile_model(model, size)
    print(f"model: {cfg.MODEL.NAME}" + (f" ({describe_arch(arch)})" if arch else ""))
    print(f"input: 1x3x{size}x{size}")
    print(f"MACs: {profile.macs / 1e9:.3f} G")
    print(f"params: {profile.params / 1e6:.3f} M")
    for index, shape in enumerate(profile.output_shapes):
        print(f"output {index}: {list(shape)}")
    return 0


if __name__ == "__main__":
    run_cli(main)
