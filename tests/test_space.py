"""Box and Pool: validation, draws, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from alframe.space import DRAW_METHODS, Box, Pool, Space

METHODS = ("uniform", "sobol", "lhs")


def box3(**kwargs) -> Box:
    return Box(names=("x0", "v0", "t"), lower=(-2, -1, 0), upper=(2, 1, 5), **kwargs)


# -- Box validation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(names=("a", "b"), lower=(0, 3), upper=(1, 2)), r"'b'.*lower < upper"),
        (dict(names=("a", "b"), lower=(0, 2), upper=(1, 2)), r"'b'.*lower < upper"),
        (dict(names=("a", "b"), lower=(0, -np.inf), upper=(1, 2)), r"'b'.*finite"),
        (dict(names=("a", "b"), lower=(0, 0), upper=(np.nan, 2)), r"'a'.*finite"),
        (dict(names=("a", "1b"), lower=(0, 0), upper=(1, 1)), r"'1b'.*identifier"),
        (dict(names=("a", "a"), lower=(0, 0), upper=(1, 1)), r"unique.*\ba\b"),
        (dict(names=(), lower=(), upper=()), r"at least one"),
        (dict(names=("a", "b"), lower=(0,), upper=(1, 1)), r"2 names but 1 lower"),
        (dict(names=("a", "b"), lower=(0, 1), upper=(1, 2), log=("c",)), r"'c'"),
        (dict(names=("a", "b"), lower=(0, 1), upper=(1, 2), log=("a",)), r"'a'.*positive"),
        (dict(names=("a", "b"), lower=(0, -1), upper=(1, 2), log=("b",)), r"'b'.*positive"),
        (dict(names=("a", "b"), lower=(0, 1), upper=(1, 2), periodic=("c",)), r"periodic.*'c'"),
        (dict(names=("a", "b"), lower=(0, 1), upper=(1, 2), log=("b",), periodic=("b",)), r"'b'.*both"),
        (dict(names=("a", "b"), lower=(0, 1), upper=(1, 2), integer=("c",)), r"integer.*'c'"),
        (dict(names=("a", "b"), lower=(0, 1), upper=(1, 2), categorical=("c",)), r"categorical.*'c'"),
        (dict(names=("a", "b"), lower=(0, 1), upper=(1, 2), categorical=("b",), log=("b",)),
         r"'b'.*both categorical and log-scale"),
        (dict(names=("a", "b"), lower=(0, 0.5), upper=(1, 2), categorical=("b",)), r"categorical input 'b'.*whole"),
        (dict(names=("a", "b"), lower=(0, 0), upper=(1, 99), categorical=("b",)), r"'b' has 100 options"),
        (dict(names=("a", "b"), lower=(0, 1), upper=(1, 2.5), integer=("b",)), r"'b'.*whole-number bounds.*2.5"),
        (dict(names=("a", "b"), lower=(0, 1), upper=(1, 2), integer=("b",), periodic=("b",)),
         r"'b'.*integer and periodic"),
    ],
)
def test_box_validation_names_the_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Box(**kwargs)


def test_box_normalises_fields_and_is_a_space():
    box = Box(names=["a", "b"], lower=[0, 1], upper=[1, 3], log=["b"])
    assert box.names == ("a", "b")
    assert box.lower == (0.0, 1.0) and box.upper == (1.0, 3.0)
    assert box.log == ("b",)
    assert box.dim == 2
    assert isinstance(box, Space)
    assert box == Box(names=("a", "b"), lower=(0, 1), upper=(1, 3), log=("b",))


# -- Box draws --------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("n", [0, 1, 7, 64])
def test_draw_shape(method, n):
    x = box3().draw(n, seed=1, method=method)
    assert x.shape == (n, 3)
    assert x.dtype == np.float64


@pytest.mark.parametrize("method", METHODS)
def test_draws_lie_inside_bounds_and_fill_them(method):
    box = box3()
    x = box.draw(2000, seed=5, method=method)
    assert np.all(box.contains(x))
    lo, hi = np.array(box.lower), np.array(box.upper)
    assert np.all(x >= lo) and np.all(x <= hi)
    span = hi - lo
    # The draw covers the box, not a corner of it.
    assert np.all(x.min(axis=0) < lo + 0.01 * span)
    assert np.all(x.max(axis=0) > hi - 0.01 * span)
    assert np.allclose(x.mean(axis=0), (lo + hi) / 2, atol=0.05 * span)


def test_contains_rejects_points_outside():
    box = box3()
    x = np.array([[0.0, 0.0, 1.0], [2.5, 0.0, 1.0], [0.0, 0.0, -0.1], [2.0, 1.0, 5.0]])
    np.testing.assert_array_equal(box.contains(x), [True, False, False, True])


@pytest.mark.parametrize("method", METHODS)
def test_log_scale_inputs_are_log_uniform(method):
    box = Box(names=("rate", "u"), lower=(1e-3, 0.0), upper=(1e3, 1.0), log=("rate",))
    x = box.draw(4096, seed=2, method=method)
    rate = x[:, 0]
    assert np.all(rate > 0)
    assert np.all(box.contains(x))
    # Median near the geometric mean of the bounds (1), not the arithmetic one (~500).
    assert abs(np.log10(np.median(rate))) < 0.1
    # Each decade holds a sixth of the points.
    counts, _ = np.histogram(np.log10(rate), bins=6, range=(-3, 3))
    np.testing.assert_allclose(counts / len(rate), 1 / 6, atol=0.03)
    # The linear input stays linear.
    assert abs(np.median(x[:, 1]) - 0.5) < 0.05


def test_unit_cube_round_trip_with_log_inputs():
    box = Box(names=("a", "b"), lower=(1e-2, -3.0), upper=(1e2, 3.0), log=("a",))
    u = np.random.default_rng(0).random((50, 2))
    x = box.from_unit(u)
    np.testing.assert_allclose(box.to_unit(x), u, atol=1e-12)
    np.testing.assert_allclose(box.from_unit([[0.5, 0.5]]), [[1.0, 0.0]], atol=1e-12)


def test_coordinates_are_log10_and_phases_and_plain_boxes_keep_x():
    box = Box(names=("m", "theta", "t"), lower=(1e-2, 0.0, -1.0), upper=(1e2, 2 * np.pi, 1.0),
              log=("m",), periodic=("theta",))
    assert not box.plain and box3().plain
    x = np.array([[1e-2, 0.0, -1.0], [10.0, np.pi / 2, 0.5], [1e2, 2 * np.pi, 1.0]])
    np.testing.assert_allclose(box.coordinates(x), [[-2.0, 1.0, 0.0, -1.0], [1.0, 0.0, 1.0, 0.5],
                                                    [2.0, 1.0, 0.0, 1.0]], atol=1e-12)
    # The two ends of a periodic range are the same point; a plain box's coordinates are x.
    ends = box.coordinates(np.array([[1.0, 1e-9, 0.0], [1.0, 2 * np.pi - 1e-9, 0.0]]))
    np.testing.assert_allclose(ends[0], ends[1], atol=1e-8)
    points = box3().draw(5, seed=0)
    np.testing.assert_array_equal(box3().coordinates(points), points)
    with pytest.raises(ValueError, match=r"\(n, 3\)"):
        box.coordinates(np.zeros((2, 2)))


def test_sobol_offsets_continue_one_sequence():
    box = box3()
    whole = box.draw(20, seed=4, method="sobol")
    first = box.draw(10, seed=4, method="sobol", offset=0)
    second = box.draw(10, seed=4, method="sobol", offset=10)
    np.testing.assert_array_equal(np.vstack([first, second]), whole)
    # Odd batch sizes continue it too.
    parts = [box.draw(k, seed=4, method="sobol", offset=o) for k, o in ((3, 0), (7, 3), (10, 10))]
    np.testing.assert_array_equal(np.vstack(parts), whole)


def test_lhs_is_stratified_per_input():
    box = box3()
    n = 50
    u = box.to_unit(box.draw(n, seed=9, method="lhs"))
    for column in u.T:
        np.testing.assert_array_equal(np.sort(np.floor(column * n)), np.arange(n))


@pytest.mark.parametrize("method", METHODS)
def test_same_seed_same_points_other_seed_other_points(method):
    box = box3()
    a = box.draw(16, seed=11, method=method)
    np.testing.assert_array_equal(a, box.draw(16, seed=11, method=method))
    b = box.draw(16, seed=12, method=method)
    assert not np.any(np.all(np.isclose(a[:, None, :], b[None, :, :]), axis=-1))


@pytest.mark.parametrize("method", ["uniform", "lhs"])
def test_offset_changes_independent_draws(method):
    box = box3()
    assert not np.allclose(box.draw(8, seed=1, method=method, offset=0),
                           box.draw(8, seed=1, method=method, offset=8))


def test_draw_rejects_bad_arguments():
    box = box3()
    with pytest.raises(ValueError, match="negative"):
        box.draw(-1, seed=0)
    with pytest.raises(ValueError, match="'halton'"):
        box.draw(4, seed=0, method="halton")


# -- Pool -------------------------------------------------------------------------------


def pool_values(n=30):
    return np.arange(n * 2, dtype=np.float64).reshape(n, 2) / 7.0


def test_pool_validation():
    with pytest.raises(ValueError, match=r"shape \(n_rows, 2\)"):
        Pool(names=("a", "b"), values=np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"shape \(n_rows, 2\)"):
        Pool(names=("a", "b"), values=np.zeros(4))
    bad = np.zeros((4, 2))
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"row 2, column 'b'"):
        Pool(names=("a", "b"), values=bad)
    with pytest.raises(ValueError, match="4 rows but 3 ids"):
        Pool(names=("a", "b"), values=np.zeros((4, 2)), ids=("p", "q", "r"))
    with pytest.raises(ValueError, match="'a b'"):
        Pool(names=("a b", "c"), values=np.zeros((4, 2)))


def test_pool_copies_and_freezes_its_values():
    values = pool_values(5)
    pool = Pool(names=("a", "b"), values=values)
    values[0, 0] = 99.0
    assert pool.values[0, 0] == 0.0
    with pytest.raises(ValueError):
        pool.values[0, 0] = 1.0
    assert len(pool) == 5 and pool.dim == 2
    assert isinstance(pool, Space)


@pytest.mark.parametrize("method", METHODS)
def test_pool_draw_returns_distinct_rows_of_the_pool(method):
    pool = Pool(names=("a", "b"), values=pool_values(30))
    x = pool.draw(12, seed=3, method=method)
    assert x.shape == (12, 2)
    rows = pool.index_of(x)
    assert np.all(rows >= 0)
    assert len(set(rows.tolist())) == 12
    np.testing.assert_array_equal(pool.values[rows], x)


def test_pool_draw_more_than_available_returns_every_row_once():
    pool = Pool(names=("a", "b"), values=pool_values(10))
    x = pool.draw(25, seed=0)
    assert sorted(pool.index_of(x).tolist()) == list(range(10))


def test_pool_draw_is_seeded():
    pool = Pool(names=("a", "b"), values=pool_values(40))
    np.testing.assert_array_equal(pool.draw(10, seed=1), pool.draw(10, seed=1))
    assert not np.array_equal(pool.draw(10, seed=1), pool.draw(10, seed=2))
    assert not np.array_equal(pool.draw(10, seed=1, offset=0), pool.draw(10, seed=1, offset=10))
    with pytest.raises(ValueError, match="'halton'"):
        pool.draw(3, seed=0, method="halton")


def test_pool_index_of():
    pool = Pool(names=("a", "b"), values=pool_values(6))
    query = np.vstack([pool.values[4], [1e6, 1e6], pool.values[0]])
    np.testing.assert_array_equal(pool.index_of(query), [4, -1, 0])
    np.testing.assert_array_equal(pool.index_of(pool.values[2]), [2])  # one point, shape (dim,)


def test_pool_draw_rejects_negative_n():
    pool = Pool(names=("a", "b"), values=pool_values(10))
    with pytest.raises(ValueError, match="negative"):
        pool.draw(-3, seed=0)


def test_draw_methods_constant():
    assert set(DRAW_METHODS) == set(METHODS)


@pytest.mark.parametrize("method", DRAW_METHODS)
def test_integer_inputs_draw_every_whole_value_evenly(method):
    box = Box(names=("cells", "x", "particles"), lower=(2, 0, 10), upper=(4, 1, 100_000),
              integer=("cells", "particles"), log=("particles",))
    x = box.draw(30_000, seed=3, method=method)
    values, counts = np.unique(x[:, 0], return_counts=True)
    assert values.tolist() == [2.0, 3.0, 4.0] and counts.min() > 0.95 * counts.max()
    assert np.all(x[:, 2] == np.round(x[:, 2])) and x[:, 2].min() >= 10 and x[:, 2].max() <= 100_000
    decades = np.histogram(np.log10(x[:, 2]), bins=[1, 2, 3, 4, 5])[0]
    assert decades.min() > 0.9 * decades.max()  # log-uniform, then rounded
    assert len(np.unique(x[:, 1])) == len(x)  # the continuous input stays continuous
    assert box.contains(x).all()
    assert box.contains(np.array([[2.5, 0.5, 100.0], [2.0, 0.5, 100.5]])).tolist() == [False, False]


def test_categorical_inputs_are_drawn_evenly_and_seen_as_indicators():
    box = Box(names=("eos", "x", "phase"), lower=(1, 0, 0), upper=(3, 1, 1), categorical=("eos",), periodic=("phase",))
    x = box.draw(3000, seed=0, method="sobol")
    values, counts = np.unique(x[:, 0], return_counts=True)
    assert values.tolist() == [1.0, 2.0, 3.0] and np.ptp(counts) <= 3  # a Sobol sequence is near even
    coords = box.coordinates(x)
    assert coords.shape == (3000, 3 + 1 + 2) and not box.plain
    np.testing.assert_array_equal(coords[:, :3], (x[:, :1] == [1.0, 2.0, 3.0]).astype(float))
    np.testing.assert_array_equal(coords[:, 3], x[:, 1])
