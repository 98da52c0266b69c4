"""Training losses of LitePose (HigherHRNet's definitions), vectorised over batch and people.

- Heatmap loss per output: ``mean((pred - target)^2 * mask)`` over joints and pixels, per image.
- Associative-embedding loss (Newell et al.) on the tag maps: *pull* draws the tags of one
  person's joints to their mean, *push* drives the means of different people apart:
  ``exp``: ``mean over pairs of exp(-(m_a - m_b)^2)``; ``max``: ``mean over pairs of
  max(0, 1 - |m_a - m_b|)``; each halved, as HigherHRNet, and zero for fewer than two people.
- Per output ``i`` the switches ``LOSS.WITH_HEATMAPS_LOSS[i]`` / ``WITH_AE_LOSS[i]`` and the
  factors ``HEATMAPS_LOSS_FACTOR[i]`` / ``PUSH_LOSS_FACTOR[i]`` / ``PULL_LOSS_FACTOR[i]``.

Losses are computed in float32 whatever precision the network ran in.
"""

import torch
import torch.nn as nn

from .errors import ConfigError


def heatmap_loss(pred, target, mask):
    """Per-image masked MSE ``[B]``: ``pred``/``target`` ``[B, J, H, W]``, ``mask`` ``[B, H, W]``."""
    if pred.shape != target.shape:
        raise ValueError(f"heatmaps of shape {list(pred.shape)} vs targets {list(target.shape)}")
    return ((pred.float() - target.float()) ** 2 * mask[:, None].float()).mean(dim=(1, 2, 3))


def ae_loss(tags, joints, loss_type="exp"):
    """Per-image ``(push [B], pull [B])``.

    ``tags`` ``[B, K, H, W]`` (K = J tag maps, one per joint, or 1 shared); ``joints``
    ``[B, P, J, 2]`` with ``(j * H * W + y * W + x, visible)`` per person and joint.
    """
    if loss_type not in ("exp", "max"):
        raise ConfigError(f"LOSS.AE_LOSS_TYPE must be 'exp' or 'max', got {loss_type!r}")
    batch, channels, height, width = tags.shape
    flat = tags.float().reshape(batch, -1)
    index, visible = joints[..., 0].long(), joints[..., 1].float()          # [B, P, J]
    if channels == 1:
        index = index % (height * width)                                    # one shared tag map
    values = torch.gather(flat, 1, index.reshape(batch, -1)).view_as(visible)
    joint_count = visible.sum(dim=2)                                        # [B, P]
    person = joint_count > 0
    denominator = joint_count.clamp(min=1)
    means = (values * visible).sum(dim=2) / denominator                     # [B, P]
    pull_person = ((values - means[..., None]) ** 2 * visible).sum(dim=2) / denominator
    people = person.sum(dim=1).float()                                      # [B]
    pull = (pull_person * person).sum(dim=1) / people.clamp(min=1)

    diff = means[:, :, None] - means[:, None, :]                           # [B, P, P]
    pairs = person[:, :, None] & person[:, None, :]
    pairs &= ~torch.eye(pairs.shape[1], dtype=torch.bool, device=pairs.device)[None]
    if loss_type == "exp":
        similarity = torch.exp(-diff ** 2)
    else:
        similarity = torch.clamp(1 - diff.abs(), min=0)
    push = 0.5 * (similarity * pairs).sum(dim=(1, 2)) / (people * (people - 1)).clamp(min=1)
    return push, pull


class PoseLoss(nn.Module):
    """The loss of every output of the network, as named terms.

    ``forward(outputs, heatmaps, masks, joints)`` returns a dict of scalar terms
    (``heatmap_i``, ``push_i``, ``pull_i`` for output ``i``, each already multiplied by its factor
    and averaged over the batch); their sum is the training loss (``total(terms)``).
    """

    def __init__(self, num_joints, with_heatmaps=(True, True), heatmap_factors=(1.0, 1.0),
                 with_ae=(True, False), push_factors=(0.001, 0.001), pull_factors=(0.001, 0.001),
                 ae_type="exp"):
        super().__init__()
        lengths = {len(with_heatmaps), len(heatmap_factors), len(with_ae), len(push_factors), len(pull_factors)}
        if len(lengths) != 1:
            raise ConfigError("LOSS.* per-output lists must all have LOSS.NUM_STAGES entries")
        if ae_type not in ("exp", "max"):
            raise ConfigError(f"LOSS.AE_LOSS_TYPE must be 'exp' or 'max', got {ae_type!r}")
        self.num_joints = num_joints
        self.with_heatmaps = tuple(with_heatmaps)
        self.heatmap_factors = tuple(heatmap_factors)
        self.with_ae = tuple(with_ae)
        self.push_factors = tuple(push_factors)
        self.pull_factors = tuple(pull_factors)
        self.ae_type = ae_type

    @classmethod
    def from_config(cls, cfg):
        loss = cfg.LOSS
        return cls(cfg.MODEL.NUM_JOINTS, loss.WITH_HEATMAPS_LOSS, loss.HEATMAPS_LOSS_FACTOR, loss.WITH_AE_LOSS,
                   loss.PUSH_LOSS_FACTOR, loss.PULL_LOSS_FACTOR, loss.AE_LOSS_TYPE)

    def forward(self, outputs, heatmaps, masks, joints):
        if len(outputs) != len(self.with_heatmaps):
            raise ValueError(f"{len(outputs)} network outputs but the loss is configured for {len(self.with_heatmaps)}")
        terms = {}
        for i, output in enumerate(outputs):
            offset = 0
            if self.with_heatmaps[i]:
                offset = self.num_joints
                terms[f"heatmap_{i}"] = heatmap_loss(output[:, :offset], heatmaps[i], masks[i]).mean() * \
                    self.heatmap_factors[i]
            if self.with_ae[i]:
                push, pull = ae_loss(output[:, offset:], joints[i], self.ae_type)
                terms[f"push_{i}"] = push.mean() * self.push_factors[i]
                terms[f"pull_{i}"] = pull.mean() * self.pull_factors[i]
        return terms

    def distillation(self, outputs, teacher_heatmaps, masks):
        """Heatmap loss against a teacher's heatmaps (the release's distillation), per output
        where heatmaps are trained, with the heatmap factors."""
        terms = {}
        for i, output in enumerate(outputs):
            if self.with_heatmaps[i]:
                terms[f"distill_{i}"] = heatmap_loss(output[:, : self.num_joints], teacher_heatmaps[i],
                                                     masks[i]).mean() * self.heatmap_factors[i]
        return terms


def total(terms):
    """Sum of loss terms (a scalar tensor)."""
    return sum(terms.values())
