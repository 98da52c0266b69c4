"""Non-finite weights in an exported model, found before it runs: a NaN or infinite weight
gives NaN maps, hence zero people and no word, so every backend refuses such a model with one
``ModelFileError`` line naming the weights (ONNX initializers and constants, OpenVINO
constants, TFLite constant tensors, ncnn ``.bin`` blobs, TorchScript parameters and buffers).
Nothing here imports PyTorch unless the model is TorchScript."""

import numpy as np

from ..errors import ModelFileError


def _refuse(label, bad, total, what):
    if bad:
        raise ModelFileError(f"{label} holds NaN or infinite weights in {len(bad)} of {total} {what} "
                             f"(first: {bad[0]}); it cannot find people: export it again from a finite checkpoint")


def _nonfinite(array):
    array = np.asarray(array)
    return array.dtype.kind in "fc" and array.size and not np.isfinite(array).all()


def check_onnx_weights(model, label):
    """``model``: a path or ONNX bytes. Initializers and ``Constant`` nodes of every graph."""
    import onnx
    from onnx import numpy_helper

    try:
        proto = onnx.load_from_string(model) if isinstance(model, (bytes, bytearray)) else onnx.load(model)
    except Exception:  # not ONNX: ONNX Runtime says so, in one line, when it loads it
        return
    bad, total = [], 0
    graphs = [proto.graph]
    while graphs:
        graph = graphs.pop()
        for tensor in graph.initializer:
            total += 1
            if _nonfinite(numpy_helper.to_array(tensor)):
                bad.append(tensor.name)
        for node in graph.node:
            for attribute in node.attribute:
                if attribute.type == onnx.AttributeProto.TENSOR:
                    total += 1
                    if _nonfinite(numpy_helper.to_array(attribute.t)):
                        bad.append(node.name or node.output[0])
                elif attribute.type == onnx.AttributeProto.GRAPH:
                    graphs.append(attribute.g)
    _refuse(label, bad, total, "initializers")


def check_openvino_weights(ov_model, label):
    """The ``Constant`` operations of an ``openvino.Model``."""
    bad, total = [], 0
    for op in ov_model.get_ordered_ops():
        if op.get_type_name() != "Constant":
            continue
        total += 1
        data = op.get_data()
        if data.dtype == np.float16 or data.dtype.kind == "f":
            if _nonfinite(data):
                bad.append(op.get_friendly_name())
        elif str(op.get_element_type()) in ("bf16", "<Type: 'bfloat16'>"):
            if _nonfinite(op.get_data().astype(np.float32)):
                bad.append(op.get_friendly_name())
    _refuse(label, bad, total, "constants")


def check_tflite_weights(interpreter, label):
    """Constant tensors of a LiteRT interpreter (allocated): the tensors no operator writes and
    that are not the model's inputs."""
    written = {d["index"] for d in interpreter.get_input_details()}
    try:
        for op in interpreter._get_ops_details():
            written.update(int(i) for i in op["outputs"])
    except Exception:  # an interpreter without op details: check nothing rather than guess
        return
    bad, total = [], 0
    for detail in interpreter.get_tensor_details():
        if detail["index"] in written or detail["dtype"] not in (np.float32, np.float16):
            continue
        try:
            data = interpreter.get_tensor(detail["index"])
        except ValueError:  # no data (a variable tensor)
            continue
        total += 1
        if _nonfinite(data):
            bad.append(detail["name"])
    _refuse(label, bad, total, "tensors")


def check_torchscript_weights(module, label):
    """Parameters and floating-point buffers of a TorchScript module."""
    import torch

    bad, total = [], 0
    for name, tensor in list(module.named_parameters()) + list(module.named_buffers()):
        if not tensor.is_floating_point():
            continue
        total += 1
        if not bool(torch.isfinite(tensor).all()):
            bad.append(name)
    _refuse(label, bad, total, "parameters")


# ncnn: the .bin holds, per layer in .param order, its weight blobs. A weight blob of the layers
# below starts with a 4-byte tag (0: float32, NCNN_FP16_TAG: float16, NCNN_INT8_TAG: int8); bias
# and BatchNorm blobs are raw float32 (ncnn's ModelBinFromDataReader).
NCNN_FP16_TAG = 0x01306B47
NCNN_INT8_TAG = 0x000D4B38
# layer type -> (weight-size param id, bias-term param id, bias-size param id)
_NCNN_WEIGHTED = {"Convolution": (6, 5, 0), "ConvolutionDepthWise": (6, 5, 0), "Deconvolution": (6, 5, 0),
                  "DeconvolutionDepthWise": (6, 5, 0), "InnerProduct": (2, 1, 0), "Convolution1D": (6, 5, 0)}
_NCNN_NO_WEIGHTS = {"Input", "ReLU", "ReLU6", "Clip", "Sigmoid", "Split", "Concat", "BinaryOp", "Interp", "Pooling",
                    "Eltwise", "Crop", "Slice", "Reshape", "Permute", "Flatten", "Padding", "Noop", "HardSwish",
                    "HardSigmoid", "Swish", "UnaryOp", "Softmax", "Dropout", "PixelShuffle", "Reorg", "Pooling1D"}


def check_ncnn_weights(param_path, bin_path, label):
    """The float weights in an ncnn ``.bin``, read layer by layer as ncnn reads them (float32 and
    float16 blobs; int8 blobs cannot be NaN). A layer type whose weights this does not know
    stops the walk there (what was read is still checked)."""
    try:
        with open(param_path, encoding="utf-8", errors="replace") as handle:
            lines = handle.read(1 << 24).splitlines()
        data = np.fromfile(bin_path, dtype=np.uint8)
    except OSError as exc:
        raise ModelFileError(f"cannot read {label}: {exc}") from None
    offset, bad, total = 0, [], 0

    def take(count, dtype):
        nonlocal offset
        size = count * np.dtype(dtype).itemsize
        if offset + size > data.size:
            raise ModelFileError(f"{label}: its .bin ends inside the weights ({bin_path} is truncated or not its "
                                 f"weights)")
        values = data[offset:offset + size].view(dtype)
        offset += (size + 3) // 4 * 4
        return values

    for line in lines[2:]:
        fields = line.split()
        if len(fields) < 4:
            continue
        kind, name = fields[0], fields[1]
        if kind in _NCNN_NO_WEIGHTS:
            continue
        if kind not in _NCNN_WEIGHTED:
            break
        params = {}
        for item in fields[4 + int(fields[2]) + int(fields[3]):]:
            key, _, value = item.partition("=")
            try:
                params[int(key)] = value
            except ValueError:
                continue
        weight_id, bias_id, bias_size_id = _NCNN_WEIGHTED[kind]
        count = int(float(params.get(weight_id, 0)))
        tag = int(take(1, np.uint32)[0])
        if tag == NCNN_FP16_TAG:
            blobs = [take(count, np.float16)]
        elif tag == NCNN_INT8_TAG:
            take(count, np.int8)
            blobs = []
        elif tag == 0:
            blobs = [take(count, np.float32)]
        else:  # a quantised table or a layout this walk does not know
            break
        if int(float(params.get(bias_id, 0))):
            blobs.append(take(int(float(params.get(bias_size_id, 0))), np.float32))
        total += 1
        if any(_nonfinite(b) for b in blobs):
            bad.append(name)
    _refuse(label, bad, total, "layers")
