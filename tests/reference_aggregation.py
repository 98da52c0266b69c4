"""A restatement, in PyTorch, of the release's test-time map aggregation (HigherHRNet's
``get_multi_stage_outputs`` and ``aggregate_results`` as the LitePose release's ``valid.py``
calls them), written from the release's code path.

It shares no code with ``litepose.inference.aggregate`` and computes what the release computes
the way the release computes it: ``F.interpolate(mode="bilinear", align_corners=False)`` to the
finest output, heatmaps summed over the selected outputs then divided, the flipped pass
mirrored with ``torch.flip`` and its joints swapped through the flip index, heatmaps of the two
passes averaged as ``(a + b) / 2``, tags kept per pass (``unsqueeze(dim=4)``, ``torch.cat``),
projection to the input size of scale 1, scales summed then divided. Tests check that the
library's NumPy / OpenCV aggregation gives the same maps. Never used by the library.
"""

import torch
import torch.nn.functional as F


def _up(maps, height, width):
    return F.interpolate(maps, size=(height, width), mode="bilinear", align_corners=False)


def _multi_stage_outputs(settings, outputs, project_size):
    """``get_multi_stage_outputs`` on the outputs of a batch ``[direct, mirrored]`` (or
    ``[direct]``): ``(heatmaps per pass, tags)`` as lists of ``[1, C, h, w]``."""
    joints = settings.num_joints
    heatmaps, tags = [], []
    passes = [0, 1] if settings.flip else [0]
    for p in passes:
        heatmaps_sum, count = 0, 0
        for i, output in enumerate(outputs):
            output = output[p:p + 1]
            if len(outputs) > 1 and i != len(outputs) - 1:
                output = _up(output, outputs[-1].size(2), outputs[-1].size(3))
            if p == 1:
                output = torch.flip(output, [3])
            offset = settings.tag_offsets[i]
            if settings.heatmap_outputs[i]:
                part = output[:, :joints]
                heatmaps_sum += part[:, list(settings.flip_index)] if p == 1 else part
                count += 1
            if settings.tag_outputs[i]:
                tag = output[:, offset:]
                tags.append(tag[:, list(settings.flip_index)] if p == 1 and settings.tag_per_joint else tag)
        heatmaps.append(heatmaps_sum / count)
    if settings.project_to_image and project_size:
        heatmaps = [_up(h, project_size[1], project_size[0]) for h in heatmaps]
        tags = [_up(t, project_size[1], project_size[0]) for t in tags]
    return heatmaps, tags


def _aggregate_results(settings, scale, final_heatmaps, tags_list, heatmaps, tags):
    if scale == 1 or len(settings.scales) == 1:
        if final_heatmaps is not None and not settings.project_to_image:
            tags = [_up(t, final_heatmaps.size(2), final_heatmaps.size(3)) for t in tags]
        for t in tags:
            tags_list.append(torch.unsqueeze(t, dim=4))
    heatmaps_avg = (heatmaps[0] + heatmaps[1]) / 2.0 if settings.flip else heatmaps[0]
    if final_heatmaps is None:
        final_heatmaps = heatmaps_avg
    elif settings.project_to_image:
        final_heatmaps += heatmaps_avg
    else:
        final_heatmaps += _up(heatmaps_avg, final_heatmaps.size(2), final_heatmaps.size(3))
    return final_heatmaps, tags_list


def reference_maps(forward, image_wh, settings, geometry_of):
    """The release's maps of one image: ``(heatmaps [J, H, W], tags [Jt, H, W, D])`` tensors.
    ``forward(geometry)`` gives the network's outputs (``[B, C, h, w]`` arrays or tensors) for
    the input ``geometry_of(image_wh, input_size, scale, min_scale)`` describes."""
    scales = sorted(settings.scales, reverse=True)
    base = geometry_of(image_wh, settings.input_size, 1.0, min(scales))
    final_heatmaps, tags_list = None, []
    for scale in scales:
        geometry = geometry_of(image_wh, settings.input_size, scale, min(scales))
        outputs = [torch.as_tensor(o, dtype=torch.float32) for o in forward(geometry)]
        heatmaps, tags = _multi_stage_outputs(settings, outputs, base.input_wh)
        final_heatmaps, tags_list = _aggregate_results(settings, scale, final_heatmaps, tags_list, heatmaps, tags)
    final_heatmaps = final_heatmaps / float(len(scales))
    tags = torch.cat(tags_list, dim=4)
    return final_heatmaps[0], tags[0]
