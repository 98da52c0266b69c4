"""An independent, functional LitePose forward written from the structure described in
``litepose_facts.md``, reading weights from a state_dict by the release's key names.
It shares no code with ``litepose.models``; tests use it to check the module wiring."""

import torch.nn.functional as F


def _bn(x, state, prefix):
    return F.batch_norm(x, state[prefix + "running_mean"], state[prefix + "running_var"],
                        state[prefix + "weight"], state[prefix + "bias"], False, 0.0, 1e-5)


def _conv(x, weight, stride=1, groups=1):
    return F.conv2d(x, weight, None, stride, weight.shape[-1] // 2, 1, groups)


def _sep_conv(x, state, prefix):
    weight = state[prefix + "conv.0.weight"]
    x = F.relu(_bn(_conv(x, weight, groups=weight.shape[0]), state, prefix + "conv.1."))
    return _conv(x, state[prefix + "conv.3.weight"])


def reference_forward(state, arch, x):
    x = F.relu6(_bn(_conv(x, state["first.0.0.weight"], stride=2), state, "first.0.1."))
    x = F.relu6(_bn(_conv(x, state["first.1.0.weight"], groups=x.shape[1]), state, "first.1.1."))
    x = _bn(_conv(x, state["first.2.weight"]), state, "first.3.")
    features = [x]
    for s, stage in enumerate(arch["backbone_setting"]):
        for b in range(stage["num_blocks"]):
            p = f"stage.{s}.{b}."
            stride = stage["stride"] if b == 0 else 1
            y = F.relu6(_bn(_conv(x, state[p + "inv.0.weight"]), state, p + "inv.1."))
            dw = state[p + "depth_conv.0.weight"]
            y = F.relu6(_bn(_conv(y, dw, stride=stride, groups=dw.shape[0]), state, p + "depth_conv.1."))
            y = _bn(_conv(y, state[p + "point_conv.0.weight"]), state, p + "point_conv.1.")
            x = y + x if (stride == 1 and y.shape == x.shape) else y
        features.append(x)
    outputs = []
    refined, raw = features[-1], features[-2]
    for i in range(3):
        up = (F.conv_transpose2d(refined, state[f"deconv_refined.{i}.weight"], None, 2, 1)
              + F.conv_transpose2d(raw, state[f"deconv_raw.{i}.weight"], None, 2, 1))
        refined = F.relu(_bn(up, state, f"deconv_bnrelu.{i}.0."))
        raw = features[-i - 3]
        if i > 0:
            outputs.append(_sep_conv(refined, state, f"final_refined.{i - 1}.")
                           + _sep_conv(raw, state, f"final_raw.{i - 1}."))
    return outputs
