import json
import random

import pytest
import torch

from conftest import arch_path
from litepose.arch import load_arch
from litepose.models import LitePose
from litepose.models.bn import recalibrate_bn
from litepose.models.space import SearchSpace
from litepose.search import EvolutionSearch, LatencyTable, MacCounter
from litepose.search.evolution import SearchError

WIDE = SearchSpace(kernel_sizes=(3, 5, 7), expansions=(3, 4, 6), stage_blocks=((4, 5, 6), (6, 8), (8, 10), (8, 10)))
HEAD = dict(num_joints=14)


def test_mutation_and_crossover_stay_in_the_space_and_change_genes():
    rng = random.Random(0)
    changed = 0
    for _ in range(100):
        a, b = WIDE.sample(rng), WIDE.sample(rng)
        mutant, child = WIDE.mutate(a, 0.5, rng), WIDE.crossover(a, b, rng)
        assert WIDE.contains(mutant) and WIDE.contains(child)
        changed += mutant != a
        for key in ("img_size", "input_channel"):
            assert child[key] in (a[key], b[key])
    assert changed > 90
    assert WIDE.mutate(a, 0.0, rng) == a


def test_mac_counter_matches_the_profiler_at_full_size():
    counter = MacCounter(HEAD)
    assert counter(load_arch(arch_path("S"))) == 5_041_094_912
    arch = WIDE.sample(random.Random(3))
    from litepose.models import profile_model
    assert counter(arch) == profile_model(LitePose(arch, **HEAD), arch["img_size"]).macs


def test_bn_recalibration_estimates_exact_statistics_and_keeps_weights():
    model = LitePose(load_arch(arch_path("XS")), **HEAD).eval()
    weights = {k: v.clone() for k, v in model.named_parameters()}
    batches = [torch.randn(2, 3, 64, 64) + i for i in range(3)]
    assert recalibrate_bn(model, batches) == 6
    assert all(torch.equal(v, weights[k]) for k, v in model.named_parameters())
    stem = model.first[0][0]
    with torch.no_grad():
        expected = torch.cat([stem(b) for b in batches]).mean(dim=(0, 2, 3))
    assert torch.allclose(model.first[0][1].running_mean, expected, atol=1e-5)
    assert model.first[0][1].momentum == 0.1 and not model.training  # settings restored


def test_bn_recalibration_of_a_supernet_member():
    from litepose.models import SuperLitePose
    supernet = SuperLitePose(num_joints=14)
    supernet.set_active_arch(load_arch(arch_path("XS")))
    recalibrate_bn(supernet, [torch.randn(2, 3, 64, 64)])
    bn = supernet.first[3]
    assert torch.all(bn.running_mean[16:] == 0) and not torch.all(bn.running_mean[:16] == 0)


def toy_cost(arch):
    """A cheap stand-in for MACs (the search logic does not depend on what the cost is)."""
    work = sum(s["channel"] * e * k * k for s in arch["backbone_setting"] for e, k in s["block_setting"])
    return work * (arch["img_size"] / 256) ** 2


def _toy_search(tmp_path, budget, score_fn=None, **kwargs):
    # A score that prefers wide backbones, known without training.
    score_fn = score_fn or (lambda arch: sum(s["channel"] for s in arch["backbone_setting"]) / 1000.0)
    return EvolutionSearch(WIDE, score_fn, toy_cost, budget, population_size=4, generations=2,
                           state_path=str(tmp_path / "state.json"), progress=False, **kwargs)


def test_search_returns_the_best_architecture_within_budget(tmp_path):
    budget = 300000.0
    search = _toy_search(tmp_path, budget)
    best = search.run()
    assert best.cost <= budget and WIDE.contains(best.arch)
    # Parents survive each generation, so the best architecture ever scored is the one returned.
    assert best.score == max(search.scores.values())
    assert [h.score for h in search.history] == sorted(h.score for h in search.history)
    assert len(search.history) == 3


def test_killed_search_resumes_without_repeating_evaluations(tmp_path):
    calls = []

    def flaky(arch):
        calls.append(arch)
        if len(calls) == 7:
            raise KeyboardInterrupt  # a kill in the middle of generation 1
        return sum(s["channel"] for s in arch["backbone_setting"]) / 1000.0

    with pytest.raises(KeyboardInterrupt):
        _toy_search(tmp_path, 300000.0, score_fn=flaky).run()
    evaluated_before = len(calls) - 1
    resumed = _toy_search(tmp_path, 300000.0, score_fn=flaky)
    best = resumed.run()
    (tmp_path / "fresh").mkdir()
    uninterrupted = _toy_search(tmp_path / "fresh", 300000.0).run()
    assert best == uninterrupted
    # Only architectures not scored before the kill were evaluated again.
    assert len(calls) - 1 - evaluated_before == len(resumed.scores) - evaluated_before


def test_search_state_of_other_settings_is_refused(tmp_path):
    _toy_search(tmp_path, 300000.0).run()
    with pytest.raises(SearchError, match="other settings"):
        _toy_search(tmp_path, 400000.0).run()


def test_unreachable_budget_is_a_clear_error(tmp_path):
    with pytest.raises(SearchError, match="below what the search space can reach"):
        _toy_search(tmp_path, 100.0, max_tries=20).run()


def _deterministic_ms(module, input_shape, device, repeats, warmup):
    """A stand-in for timing one layer: its weights times its input's pixels, so that the
    table's orderings do not depend on what else the machine runs (timings: benchmarks)."""
    return 1e-6 * (1 + sum(p.numel() for p in module.parameters())) * input_shape[-1] * input_shape[-2]


def test_layer_timing_is_a_positive_time():
    from litepose.search.latency import _measure

    ms = _measure(torch.nn.Conv2d(3, 8, 3), (1, 3, 16, 16), torch.device("cpu"), repeats=2, warmup=1)
    assert 0 < ms < float("inf")


def test_latency_table_round_trip_and_prediction(tmp_path, monkeypatch):
    from litepose.errors import LitePoseError
    from litepose.search import latency

    monkeypatch.setattr(latency, "_measure", _deterministic_ms)
    # A small space keeps the table short; the released M has layers it never timed.
    space = SearchSpace(img_sizes=(64, 128), input_channel=16, stage_channels=(16, 24, 32, 48),
                        stage_blocks=((1, 2), (1,), (1,), (1,)), deconv_channels=(16, 16, 16))
    table = LatencyTable.build(space, HEAD, torch.device("cpu"), samples=2, repeats=2, warmup=1, progress=False)
    path = tmp_path / "latency.json"
    table.save(str(path))
    loaded = LatencyTable.load(str(path))
    widest = space.widest()
    assert loaded.predict(widest) == pytest.approx(table.predict(widest)) and loaded.estimated_units == 0
    assert loaded.predict(space.smallest()) < loaded.predict(widest)
    # An architecture with layers never timed is estimated from MACs, and that is counted.
    loaded.predict(load_arch(arch_path("M")))
    assert loaded.estimated_units > 0
    with pytest.raises(LitePoseError, match="already exists"):
        table.save(str(path))
    path.write_text(json.dumps({"meta": {}}))
    with pytest.raises(LitePoseError, match="not a latency table"):
        LatencyTable.load(str(path))
