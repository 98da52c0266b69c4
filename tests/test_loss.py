"""Losses: the AE loss separates people and groups joints; heatmap loss honours the mask;
per-output switches and factors."""

import math

import pytest
import torch

from litepose.errors import ConfigError
from litepose.loss import PoseLoss, ae_loss, heatmap_loss, total

J, R = 3, 8


def tag_maps(people_tags, batch=1):
    """Tag maps ``[B, J, R, R]`` and joint indices ``[B, P, J, 2]`` where person ``p``'s joint ``j``
    sits at pixel ``(x=p, y=j)`` with tag ``people_tags[p][j]``."""
    tags = torch.zeros(batch, J, R, R)
    joints = torch.zeros(batch, 5, J, 2, dtype=torch.long)
    for p, values in enumerate(people_tags):
        for j, value in enumerate(values):
            if value is None:
                continue
            tags[:, j, j, p] = value
            joints[:, p, j] = torch.tensor([j * R * R + j * R + p, 1])
    return tags, joints


@pytest.mark.parametrize("loss_type", ["exp", "max"])
def test_ae_loss_is_zero_for_perfectly_separated_tags(loss_type):
    tags, joints = tag_maps([[0.0, 0.0, 0.0], [5.0, 5.0, None], [-5.0, -5.0, -5.0]])
    push, pull = ae_loss(tags, joints, loss_type)
    assert pull.item() == 0
    assert push.item() < 1e-10


@pytest.mark.parametrize("loss_type", ["exp", "max"])
def test_push_grows_when_two_people_share_a_tag(loss_type):
    separated, joints = tag_maps([[0.0, 0.0, 0.0], [5.0, 5.0, 5.0]])
    shared, _ = tag_maps([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    close, _ = tag_maps([[0.0, 0.0, 0.0], [0.3, 0.3, 0.3]])
    push_separated = ae_loss(separated, joints, loss_type)[0].item()
    push_close = ae_loss(close, joints, loss_type)[0].item()
    push_shared = ae_loss(shared, joints, loss_type)[0].item()
    assert push_separated < push_close < push_shared
    assert push_shared == pytest.approx(0.5)  # HigherHRNet's halved mean over ordered pairs


def test_pull_measures_spread_within_a_person():
    tags, joints = tag_maps([[0.0, 2.0, None], [7.0, 7.0, 7.0]])
    push, pull = ae_loss(tags, joints, "exp")
    # Person 0: mean 1, squared deviations 1 and 1 -> 1; person 1: 0; mean over people 0.5.
    assert pull.item() == pytest.approx(0.5)


def test_single_person_or_nobody_has_no_push():
    one, joints = tag_maps([[1.0, 1.0, 1.0]])
    assert ae_loss(one, joints)[0].item() == 0
    nobody = torch.zeros(1, 5, J, 2, dtype=torch.long)
    push, pull = ae_loss(one, nobody)
    assert push.item() == 0 and pull.item() == 0


def reference_ae(tags, joints, loss_type):
    """Per-image, per-person loops (the definition) to check the vectorised loss against."""
    pushes, pulls = [], []
    flat = tags.reshape(tags.shape[0], -1)
    for b in range(tags.shape[0]):
        means, pull = [], 0.0
        for person in joints[b]:
            values = [flat[b, i] for i, v in person.tolist() if v > 0]
            if not values:
                continue
            values = torch.stack(values)
            means.append(values.mean())
            pull += ((values - values.mean()) ** 2).mean()
        n = len(means)
        pulls.append(pull / n if n else torch.tensor(0.0))
        if n < 2:
            pushes.append(torch.tensor(0.0))
            continue
        m = torch.stack(means)
        diff = m[:, None] - m[None, :]
        sim = torch.exp(-diff ** 2) if loss_type == "exp" else torch.clamp(1 - diff.abs(), min=0)
        pushes.append(0.5 * (sim.sum() - n) / (n * (n - 1)))
    return torch.stack(pushes), torch.stack(pulls)


@pytest.mark.parametrize("loss_type", ["exp", "max"])
def test_vectorised_ae_loss_equals_the_per_person_definition(loss_type):
    generator = torch.Generator().manual_seed(0)
    tags = torch.randn(4, J, R, R, generator=generator)
    joints = torch.zeros(4, 6, J, 2, dtype=torch.long)
    for b in range(4):
        for p in range(b + 1):  # 1 to 4 people, the rest padding
            for j in range(J):
                if torch.rand(1, generator=generator) < 0.8:
                    pixel = int(torch.randint(0, R * R, (1,), generator=generator))
                    joints[b, p, j] = torch.tensor([j * R * R + pixel, 1])
    push, pull = ae_loss(tags, joints, loss_type)
    ref_push, ref_pull = reference_ae(tags, joints, loss_type)
    torch.testing.assert_close(push, ref_push)
    torch.testing.assert_close(pull, ref_pull)


def test_ae_loss_with_one_shared_tag_map():
    tags, joints = tag_maps([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    shared = torch.zeros(1, 1, R, R)
    shared[0, 0, :, 0] = 3.0   # person 0's joints (x=0) all tagged 3, person 1's (x=1) 0
    push, pull = ae_loss(shared, joints)
    assert pull.item() == 0 and push.item() == pytest.approx(math.exp(-9) * 0.5 * 2 / 2)


def test_heatmap_loss_ignores_masked_pixels():
    pred, target = torch.zeros(2, J, R, R), torch.zeros(2, J, R, R)
    pred[0, :, :4] = 1.0
    mask = torch.ones(2, R, R)
    mask[0, :4] = 0
    assert heatmap_loss(pred, target, mask).tolist() == [0.0, 0.0]
    mask[0, 0, 0] = 1
    assert heatmap_loss(pred, target, mask)[0].item() == pytest.approx(1.0 / (R * R))


def test_pose_loss_switches_and_factors():
    outputs = [torch.ones(2, 2 * J, R, R), torch.ones(2, J, 2 * R, 2 * R)]
    heatmaps = [torch.zeros(2, J, R, R), torch.zeros(2, J, 2 * R, 2 * R)]
    masks = [torch.ones(2, R, R), torch.ones(2, 2 * R, 2 * R)]
    _, joints = tag_maps([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]], batch=2)
    joints = [joints, joints]
    loss = PoseLoss(J, (True, True), (1.0, 0.5), (True, False), (0.01, 1.0), (0.02, 1.0), "exp")
    terms = loss(outputs, heatmaps, masks, joints)
    assert sorted(terms) == ["heatmap_0", "heatmap_1", "pull_0", "push_0"]
    assert terms["heatmap_0"].item() == pytest.approx(1.0) and terms["heatmap_1"].item() == pytest.approx(0.5)
    assert terms["push_0"].item() == pytest.approx(0.01 * 0.5) and terms["pull_0"].item() == 0
    assert total(terms).item() == pytest.approx(1.5 + 0.005)
    no_ae = PoseLoss(J, (True, True), (1.0, 1.0), (False, False), (0.0, 0.0), (0.0, 0.0))
    assert sorted(no_ae(outputs[:1] + [outputs[1]], heatmaps, masks, joints)) == ["heatmap_0", "heatmap_1"]
    with pytest.raises(ConfigError, match="AE_LOSS_TYPE"):
        PoseLoss(J, ae_type="sum")
