#!/usr/bin/env python
"""Extract a sub-network's weights from a trained supernet, verified, as a plain state_dict.

    python weight_transfer.py --cfg experiments/crowd_pose/mobilenet/supermobile.yaml \
        --superconfig mobile_configs/search-XS.json TEST.MODEL_FILE supernet.pth --output xs.pth

The result loads with ``valid.py --cfg .../mobile.yaml --superconfig ARCH.json TEST.MODEL_FILE
xs.pth`` and initialises fine-tuning with ``dist_train.py ... MODEL.PRETRAINED xs.pth``.
"""

import sys

from litepose.cli import config_parser, load_cli_config, number_range, parse_args, run_cli, run_inputs

TOLERANCE = 1e-4


def main(argv=None):
    from litepose.arch import describe_arch, load_arch
    from litepose.errors import ConfigError
    from litepose.models import load_model
    from litepose.models.transfer import extract_subnet
    from litepose.models.space import SearchSpace
    from litepose.utils.device import resolve_device
    from litepose.utils.io import atomic_torch_save, check_output_file

    parser = config_parser(__doc__.splitlines()[0])
    parser.add_argument("--superconfig", required=True, metavar="ARCH.json", help="architecture to extract")
    parser.add_argument("--output", required=True, help="where to write the sub-network's state_dict")
    parser.add_argument("--force", action="store_true", help="overwrite --output if it exists")
    parser.add_argument("--tolerance", type=number_range(0), default=TOLERANCE,
                        help=f"largest output difference accepted (default {TOLERANCE})")
    args = parse_args(parser, argv)

    # Everything that can be wrong with the request is checked before any work.
    cfg = load_cli_config(args)
    if cfg.MODEL.NAME != "pose_supermobilenet":
        raise ConfigError(f"{args.cfg}: MODEL.NAME is {cfg.MODEL.NAME}; weight transfer needs a supernet "
                          "config (pose_supermobilenet)")
    if not cfg.TEST.MODEL_FILE:
        raise ConfigError("no supernet checkpoint: give TEST.MODEL_FILE path/to/supernet.pth")
    check_output_file(args.output, args.force, "--output", inputs=run_inputs(args, cfg))
    arch = SearchSpace.from_config(cfg).check(load_arch(args.superconfig), source=args.superconfig)
    device = resolve_device(cfg.DEVICE)

    supernet = load_model(cfg, subnet=False).to(device)

    subnet, difference = extract_subnet(supernet, arch)
    print(f"extracted: {describe_arch(arch)}")
    print(f"max abs difference, supernet vs extracted, on a random {arch['img_size']}x{arch['img_size']} "
          f"input: {difference:.3e}")
    if not difference <= args.tolerance:  # also catches NaN
        print(f"error: the extracted network differs from the supernet by {difference:.3e} "
              f"(> {args.tolerance:g}); nothing written", file=sys.stderr)
        return 1
    state = {key: value.detach().cpu() for key, value in subnet.state_dict().items()}
    atomic_torch_save(state, args.output)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    run_cli(main)
