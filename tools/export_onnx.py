#!/usr/bin/env python
"""Export a trained model to ONNX (and optionally TorchScript), checked against PyTorch.

    python tools/export_onnx.py --cfg experiments/crowd_pose/mobilenet/mobile.yaml \
        --superconfig mobile_configs/search-S.json TEST.MODEL_FILE ckpt.pth --output litepose-s.onnx \
        [--no-fuse-bn] [--dynamic] [--input-size 448] [--opset 17] [--torchscript litepose-s.pt] [--force]

BatchNorm is folded into the convolutions by default (--no-fuse-bn keeps it). The export
is validated with onnx.checker and run by ONNX Runtime on a random input against the
unfolded PyTorch model; the largest absolute difference is printed, and above --tolerance
(1e-3) the command fails without writing anything. With --dynamic, batch, height and
width are dynamic and a second, non-square input size is checked too. Files are written
atomically and never overwritten without --force.
"""

import argparse

from litepose.cli import (config_parser, input_size, int_range, load_cli_config, number_range, parse_args,
                                run_cli, run_inputs)


def main(argv=None):
    import torch

    from litepose.deploy import (ExportError, batchnorm_names, check_onnx, example_input, export_onnx, export_torchscript,
                            fuse_bn, max_abs_diff_onnx, max_abs_diff_torchscript, onnx_session)
    from litepose.deploy.export import MAX_OPSET, MIN_OPSET
    from litepose.errors import CheckpointError
    from litepose.models import build_model, load_checkpoint
    from litepose.models.checkpoint import nonfinite_tensors
    from litepose.utils.io import atomic_write_bytes, check_output_file
    from litepose.utils.limits import input_size_problem

    parser = config_parser(__doc__.splitlines()[0])
    parser.add_argument("--superconfig", metavar="ARCH.json", help="architecture of a LitePose model")
    parser.add_argument("--output", required=True, metavar="M.onnx", help="ONNX file to write")
    parser.add_argument("--fuse-bn", action=argparse.BooleanOptionalAction, default=True,
                        help="fold BatchNorm into the convolutions (default; --no-fuse-bn keeps BN layers)")
    parser.add_argument("--dynamic", action="store_true", help="dynamic batch, height and width")
    parser.add_argument("--input-size", type=input_size, default=None,
                        help="square export size (default: the architecture's img_size or DATASET.INPUT_SIZE)")
    parser.add_argument("--opset", type=int_range(1, 100), default=17, help="ONNX opset version")
    parser.add_argument("--torchscript", metavar="M.pt", help="also write a traced TorchScript module here")
    parser.add_argument("--tolerance", type=number_range(0), default=1e-3, help="largest accepted |ONNX - PyTorch|")
    parser.add_argument("--force", action="store_true", help="overwrite existing output files")
    args = parse_args(parser, argv)
    cfg = load_cli_config(args)
    for path in filter(None, (args.output, args.torchscript)):
        check_output_file(path, args.force, "--output" if path == args.output else "--torchscript",
                          inputs=run_inputs(args, cfg))
    if not MIN_OPSET <= args.opset <= MAX_OPSET:
        raise ExportError(f"--opset must be between {MIN_OPSET} and {MAX_OPSET} (the opsets this PyTorch exports), "
                          f"got {args.opset}")

    if not cfg.TEST.MODEL_FILE:
        raise CheckpointError("no checkpoint given: add TEST.MODEL_FILE path/to/checkpoint.pth")
    model = build_model(cfg, args.superconfig)
    load_checkpoint(model, cfg.TEST.MODEL_FILE)
    broken = nonfinite_tensors(model.state_dict())
    if broken:
        raise ExportError(f"{cfg.TEST.MODEL_FILE} holds NaN or infinite values in {len(broken)} tensors (first: "
                          f"{broken[0]}); nothing written")
    if hasattr(model, "get_active_subnet"):
        model = model.get_active_subnet()
    model = model.cpu().eval()
    arch = getattr(model, "arch", None)
    size = args.input_size or (arch["img_size"] if arch else cfg.DATASET.INPUT_SIZE)
    if input_size_problem(size):
        raise ExportError(input_size_problem(size))

    deployed = model
    if args.fuse_bn:
        deployed = fuse_bn(model)
        print(f"folded {len(batchnorm_names(model)) - len(batchnorm_names(deployed))} BatchNorm layers "
              f"({len(batchnorm_names(deployed))} left)")
    sizes = [(size, size)] + ([(size + 64, size - 32)] if args.dynamic and size > 32 else [])
    with torch.no_grad():
        outputs = model(example_input(sizes[0]))
        if not all(bool(torch.isfinite(o).all()) for o in (outputs if isinstance(outputs, (list, tuple)) else [outputs])):
            raise ExportError(f"the network's outputs are NaN or infinite on a random input ({cfg.TEST.MODEL_FILE}); "
                              "nothing written")
        if args.fuse_bn:
            diff = max(_diff(model, deployed, example_input(s)) for s in sizes)
            print(f"max |folded - original| (PyTorch): {diff:.3g}")

    data = export_onnx(deployed, size, dynamic=args.dynamic, opset=args.opset)
    check_onnx(data)
    session = onnx_session(data)
    worst = 0.0
    for s in sizes:
        diff = max_abs_diff_onnx(model, session, example_input(s))
        worst = max(worst, diff)
        print(f"max |ONNX Runtime - PyTorch| at input {s[0]}x{s[1]}: {diff:.3g}")
    if not worst <= args.tolerance:
        raise ExportError(f"ONNX Runtime differs from PyTorch by {worst:.3g} (tolerance {args.tolerance:g}); "
                          f"nothing written")

    script = None
    if args.torchscript:
        script = export_torchscript(deployed, size)
        diff = max(max_abs_diff_torchscript(model, script, example_input(s)) for s in sizes)
        print(f"max |TorchScript - PyTorch|: {diff:.3g}")
        if not diff <= args.tolerance:
            raise ExportError(f"TorchScript differs from PyTorch by {diff:.3g} (tolerance {args.tolerance:g}); "
                              f"nothing written")

    atomic_write_bytes(args.output, data)
    print(f"wrote {args.output} ({len(data) / 1e6:.1f} MB, input 1x3x{size}x{size}"
          f"{', dynamic batch/height/width' if args.dynamic else ''}, BN {'folded' if args.fuse_bn else 'kept'})")
    if script is not None:
        atomic_write_bytes(args.torchscript, script)
        print(f"wrote {args.torchscript}")
    return 0


def _diff(a, b, x):
    return max((p - q).abs().max().item() for p, q in zip(a(x), b(x)))


if __name__ == "__main__":
    run_cli(main)
