"""``munkres_assignment``: the same pairs as the release's solver, ``munkres.Munkres().compute``
(package version 1.1.4), on every shape and above all on ties."""

from fractions import Fraction

import numpy as np
import pytest
from munkres import Munkres
from scipy.optimize import linear_sum_assignment

from litepose.inference.assignment import munkres_assignment

MAX_NUM_PEOPLE = 30


def package_pairs(cost):
    return Munkres().compute(np.asarray(cost, dtype=np.float64).tolist())


def our_pairs(cost):
    rows, cols = munkres_assignment(cost)
    assert rows.dtype == cols.dtype == np.int64
    return list(zip(rows.tolist(), cols.tolist()))


def assert_same_pairs(cost):
    expected = package_pairs(cost)
    assert our_pairs(cost) == expected, f"shape {np.shape(cost)}"
    return expected


def grouping_cost(rng, detections, people):
    """The release's matching cost: ``round(distance) * 100 - score``, scores read from a
    float32 heatmap, padded with 1e10 "new person" columns to square when there are more
    detections than people."""
    distance = rng.random((detections, people)) * 3
    scores = rng.uniform(0.1, 1, (detections, 1)).astype(np.float32).astype(np.float64)
    cost = np.round(distance) * 100 - scores
    if detections > people:
        cost = np.hstack([cost, np.zeros((detections, detections - people)) + 1e10])
    return cost


def random_cost(kind, rng, shape):
    if kind == "float":
        return rng.normal(size=shape)
    if kind == "small integers":  # mostly ties
        return rng.integers(0, 3, shape).astype(np.float64)
    # The grouping's cost without the padding: three distance levels, one score per row.
    return np.round(rng.random(shape) * 3) * 100 - rng.uniform(0.1, 1, (shape[0], 1))


@pytest.mark.parametrize("kind", ["float", "small integers", "grouping cost"])
def test_every_size_and_shape_gives_the_packages_pairs(kind):
    rng = np.random.default_rng(["float", "small integers", "grouping cost"].index(kind))
    for rows in range(1, MAX_NUM_PEOPLE + 1):
        extra = int(rng.integers(1, 9))
        for shape in ((rows, rows), (rows, rows + extra), (rows, max(1, rows - extra))):
            pairs = assert_same_pairs(random_cost(kind, rng, shape))
            assert len(pairs) == min(shape)


def test_the_groupings_padded_matrices_give_the_packages_pairs():
    rng = np.random.default_rng(10)
    for detections in range(1, MAX_NUM_PEOPLE + 1):
        for people in sorted({1, detections, int(rng.integers(1, MAX_NUM_PEOPLE + 1))}):
            cost = grouping_cost(rng, detections, people)
            pairs = assert_same_pairs(cost)
            assert [row for row, _ in pairs] == list(range(detections))  # every detection assigned


def test_ties_are_frequent_and_broken_as_the_package_breaks_them():
    """On these matrices scipy's solver, equally optimal, often picks other pairs: the tests
    above would fail with it."""
    rng = np.random.default_rng(11)
    other_optimum = 0
    for trial in range(60):
        cost = grouping_cost(rng, int(rng.integers(2, 16)), int(rng.integers(1, 16)))
        pairs = assert_same_pairs(cost)
        rows, cols = linear_sum_assignment(cost)
        scipy_pairs = list(zip(rows.tolist(), cols.tolist()))
        total = sum(cost[r, c] for r, c in pairs)
        assert total == pytest.approx(cost[rows, cols].sum(), rel=1e-12)
        other_optimum += scipy_pairs != pairs
    assert other_optimum >= 10


def test_step_6_rounds_as_the_package_rounds():
    """Adding the minimum to a covered row and then subtracting it from an uncovered column
    loses the 1e-16 differences in row 2 here, so the package settles on an assignment that
    exact arithmetic would not (it costs 1e-16 more); the same two roundings reproduce it."""
    cost = [[2000.0, 2000.0, 2000.0, 0.0],
            [200000000.0, 100000000.10000001, 200000000.1, 0.0],
            [2.0000000009999999e-07, 2e-07, 1.000000001e-07, 0.0],
            [20000.00001, 20000.00001, 10000.000010000002, 1e-05]]
    assert assert_same_pairs(cost) == [(0, 1), (1, 3), (2, 0), (3, 2)]
    exact = Munkres().compute([[Fraction(value) for value in row] for row in cost])
    assert exact == [(0, 0), (1, 3), (2, 1), (3, 2)]


def test_mixed_magnitudes_and_huge_costs_give_the_packages_pairs():
    """Rows of very different scales (rounding in step 6), and costs beyond ``sys.maxsize``,
    where the package's smallest-value search is capped."""
    rng = np.random.default_rng(12)
    for trial in range(150):
        n, m = int(rng.integers(1, 12)), int(rng.integers(1, 12))
        if trial % 3 == 0:
            scale = 10.0 ** rng.integers(-8, 9, size=(n, 1))
            cost = (rng.integers(0, 3, (n, m)) + rng.integers(0, 2, (n, m)) * 1e-9) * scale
        elif trial % 3 == 1:
            cost = np.round(rng.random((n, m)) * 4) * 10.0 ** rng.integers(-6, 17, size=(n, m))
        else:
            cost = rng.integers(0, 300, (n, m)) * 1e19 + rng.integers(0, 4, (n, m)) * 4096.0
        assert_same_pairs(cost)


def test_more_than_64_rows_or_columns_give_the_packages_pairs():
    rng = np.random.default_rng(13)
    for shape in ((65, 65), (70, 66), (64, 80)):  # bit sets of more than one 64-bit word
        assert_same_pairs(rng.integers(0, 3, shape).astype(np.float64))


def test_inputs_and_edge_cases():
    assert our_pairs([[3.0]]) == [(0, 0)]
    assert our_pairs(np.array([[1, 2], [2, 1]])) == package_pairs([[1, 2], [2, 1]])  # integer input
    assert our_pairs(np.zeros((3, 3))) == [(0, 0), (1, 1), (2, 2)] == package_pairs(np.zeros((3, 3)))
    assert our_pairs(np.zeros((3, 0))) == [] == package_pairs([[], [], []])
    assert our_pairs(np.zeros((0, 4))) == []
    assert our_pairs([[-5.0, -5.0, 1.0], [-5.0, -5.0, 2.0]]) == package_pairs([[-5.0, -5.0, 1.0], [-5.0, -5.0, 2.0]])
    with pytest.raises(ValueError, match="finite"):
        munkres_assignment([[1.0, np.inf]])
    with pytest.raises(ValueError, match="finite"):
        munkres_assignment([[np.nan]])
    with pytest.raises(ValueError, match="2-D"):
        munkres_assignment([1.0, 2.0])
