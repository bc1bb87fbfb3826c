"""The 1-D potential simulator: accuracy against scipy, energy conservation, noise, validation."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from scipy.integrate import quad, solve_ivp

from alframe.oracle import FunctionOracle, Outcome
from simulators.potential1d import (
    POTENTIALS,
    bucket_size,
    energy,
    energy_trace,
    get_potential,
    langevin_end,
    make_oracle,
    potential_energy,
    query_keys,
    trajectory_end,
)
from simulators.potential1d.integrator import _compiled_verlet

# Written out by hand, independently of the JAX gradients under test.
NUMPY_FORCES = {
    "anharmonic": lambda x: -x - x**3,
    "double_well": lambda x: x - x**3,
    "morse": lambda x: -2.0 * (1.0 - np.exp(-x)) * np.exp(-x),
    "pendulum": lambda x: -np.sin(x),
}


def reference_end(potential, x0, v0, t):
    """x(t) by DOP853 at rtol 1e-10, one solve per trajectory: shapes (n,) -> (n,)."""
    force = NUMPY_FORCES[potential]
    out = np.empty(len(x0))
    for i, (a, b, c) in enumerate(zip(x0, v0, t)):
        sol = solve_ivp(lambda _, y: (y[1], force(y[0])), (0.0, c), (a, b),
                        method="DOP853", rtol=1e-10, atol=1e-12)
        assert sol.success, sol.message
        out[i] = sol.y[0, -1]
    return out


def random_starts(n, seed, t_max=10.0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-2, 2, n), rng.uniform(-2, 2, n), rng.uniform(0, t_max, n)


# --- integrator accuracy ----------------------------------------------------------------------


def test_anharmonic_matches_dop853_within_1e3_at_1000_steps():
    x0, v0, t = random_starts(50, seed=0)
    x = trajectory_end(x0, v0, t, potential="anharmonic", n_steps=1000)
    assert x.shape == (50,) and x.dtype == np.float32
    err = np.abs(x - reference_end("anharmonic", x0, v0, t))
    assert err.max() <= 1e-3, err.max()


# Bound potentials get the anharmonic tolerance. In the Morse well every start with x0 < 0 sits
# high on the steep wall (V(-2) = 41 D), so most particles dissociate and fly off to x ~ 50-70;
# the timing error of the bounce turns into a position error that grows with the distance
# travelled, so the tolerance is relative there.
OTHER_TOLERANCES = {
    "double_well": lambda x_ref: 1e-3,
    "pendulum": lambda x_ref: 1e-3,
    "morse": lambda x_ref: 1e-3 * (1.0 + np.abs(x_ref)),
}


@pytest.mark.parametrize("potential", sorted(OTHER_TOLERANCES))
def test_other_potentials_match_dop853(potential):
    assert set(OTHER_TOLERANCES) | {"anharmonic"} == set(POTENTIALS)
    x0, v0, t = random_starts(50, seed=1)
    ref = reference_end(potential, x0, v0, t)
    err = np.abs(trajectory_end(x0, v0, t, potential=potential, n_steps=1000) - ref)
    assert np.all(err <= OTHER_TOLERANCES[potential](ref)), err.max()
    if potential == "morse":
        bound = np.asarray(energy(x0, v0, "morse")) < 1.0  # below the dissociation energy D
        assert bound.sum() >= 5 and err[bound].max() <= 1e-3


def test_verlet_is_second_order():
    # float64 keeps round-off out of the way of the discretisation error being measured.
    x0, v0, t = random_starts(20, seed=2, t_max=5.0)
    ref = reference_end("anharmonic", x0, v0, t)
    with jax.enable_x64(True):
        errors = [np.abs(trajectory_end(x0, v0, t, n_steps=n, dtype="float64") - ref).max()
                  for n in (250, 500, 1000)]
    ratios = np.array(errors[:-1]) / np.array(errors[1:])
    assert np.all((ratios > 3.5) & (ratios < 4.5)), (errors, ratios)


def test_zero_time_returns_start_and_shapes_broadcast():
    x0 = np.array([-1.3, 0.0, 1.7])
    assert np.array_equal(trajectory_end(x0, 2.0, 0.0), x0.astype(np.float32))
    assert trajectory_end(0.5, 0.0, np.array([[1.0, 2.0]])).shape == (1, 2)


def test_batch_sizes_share_a_few_compilations():
    potential = get_potential("pendulum")
    n_steps = 17  # a step count used nowhere else, so the compiled function starts fresh
    fn = _compiled_verlet(potential, n_steps)
    rng = np.random.default_rng(3)
    for n in (1, 5, 63, 64, 65, 100, 128):
        trajectory_end(rng.normal(size=n), rng.normal(size=n), rng.uniform(size=n),
                       potential=potential, n_steps=n_steps)
    assert _compiled_verlet(potential, n_steps) is fn
    assert [bucket_size(n) for n in (1, 64, 65, 128, 129)] == [64, 64, 128, 128, 256]
    if hasattr(fn, "_cache_size"):
        assert fn._cache_size() == 2  # buckets 64 and 128


# --- energy -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("potential", "x0", "v0"),
    [("anharmonic", 1.5, 1.0), ("double_well", 0.3, 0.5), ("morse", 0.5, 0.3),
     ("pendulum", 2.0, 0.5)],
)
def test_energy_error_is_bounded_without_secular_drift(potential, x0, v0):
    n_steps, dt = 100_000, 0.01
    tenth = n_steps // 10 // 10  # energies are recorded every 10 steps
    e = np.asarray(energy_trace(x0, v0, n_steps * dt, potential=potential, n_steps=n_steps,
                                every=10), np.float64)
    assert e.shape == (n_steps // 10 + 1,)
    dev = np.abs(e - e[0])
    first, last = dev[:tenth].max(), dev[-tenth:].max()
    # Verlet's energy error is O(dt^2) and oscillates; float32 round-off adds a slow random walk
    # of a few 1e-5 over 1e5 steps, hence the absolute allowance.
    assert dev.max() <= 1e-3 * max(abs(e[0]), 1.0)
    assert last <= 1.5 * first + 2e-5, (first, last)
    with jax.enable_x64(True):
        e64 = np.asarray(energy_trace(x0, v0, n_steps * dt, potential=potential, n_steps=n_steps,
                                      every=10, dtype="float64"))
    dev64 = np.abs(e64 - e64[0])
    assert dev64[-tenth:].max() <= 1.01 * dev64[:tenth].max()


def test_energy_error_scales_as_dt_squared():
    def max_deviation(dt):
        e = np.asarray(energy_trace(1.5, 1.0, 2000 * dt, n_steps=2000), np.float64)
        return np.abs(e - e[0]).max()

    ratio = max_deviation(0.05) / max_deviation(0.01)
    assert 15 < ratio < 35, ratio  # 25 for a second-order method


def test_energy_functions():
    assert float(energy(1.0, 2.0, "anharmonic")) == pytest.approx(2.0 + 0.5 + 0.25)
    assert float(potential_energy(0.0, "morse")) == 0.0
    assert np.allclose(potential_energy(np.array([-1.0, 1.0]), "double_well"), -0.25)
    assert float(potential_energy(np.pi, "pendulum")) == pytest.approx(2.0)
    assert energy(np.zeros(4), np.ones(4)).shape == (4,)


# --- oracle -----------------------------------------------------------------------------------


def test_oracle_runs_valid_queries():
    oracle = make_oracle()
    assert isinstance(oracle, FunctionOracle)
    assert oracle.space.names == ("x0", "v0", "t") and oracle.outputs.names == ("x",)
    assert oracle.space.lower == (-2.0, -2.0, 0.0) and oracle.space.upper == (2.0, 2.0, 5.0)
    queries = oracle.space.draw(30, seed=0)
    queries[0, 2] = 0.0
    outcome = oracle.run(queries)
    assert isinstance(outcome, Outcome)
    assert outcome.y.shape == (30, 1) and outcome.ok.all() and (outcome.error == "").all()
    assert outcome.y[0, 0] == queries[0, 0]  # t = 0 gives x0 back, bit for bit
    expected = trajectory_end(*queries.T)
    assert np.allclose(outcome.y[1:, 0], expected[1:], atol=1e-6)


def test_observation_noise_has_the_right_std_and_is_reproducible():
    clean = make_oracle(seed=0)
    noisy = make_oracle(noise_std=0.1, seed=0)
    queries = noisy.space.draw(4000, seed=1)
    noise = noisy.run(queries).y[:, 0] - clean.run(queries).y[:, 0]
    assert noise.std() == pytest.approx(0.1, rel=0.05)
    assert abs(noise.mean()) < 4 * 0.1 / np.sqrt(len(noise))
    assert np.mean(np.abs(noise) < 0.1) == pytest.approx(0.683, abs=0.03)

    # The same query gives the same value whatever batch it comes in, in any order.
    first = noisy.run(queries[:50]).y[:, 0]
    reordered = noisy.run(np.r_[queries[200:300], queries[:50][::-1]]).y[100:, 0][::-1]
    alone = np.array([noisy.run(q[None]).y[0, 0] for q in queries[:3]])
    again = make_oracle(noise_std=0.1, seed=0).run(queries[:50]).y[:, 0]
    assert np.array_equal(first, reordered)
    assert np.array_equal(first[:3], alone)
    assert np.array_equal(first, again)

    other_seed = make_oracle(noise_std=0.1, seed=1).run(queries[:50]).y[:, 0]
    assert np.all(other_seed != first)


@pytest.mark.parametrize("langevin", [{}, {"gamma": 1.0, "kT": 0.5}], ids=["verlet", "langevin"])
def test_same_query_same_value_in_a_large_chunked_batch(langevin):
    # 9000 queries pad to 16384 lanes, which run in chunks: a different compiled program from
    # the 64-lane one a lone query gets, yet the answer must not change by a single bit.
    oracle = make_oracle(noise_std=0.05, seed=11, **langevin)
    queries = oracle.space.draw(9000, seed=6)
    big = oracle.run(queries).y[:, 0]
    assert np.array_equal(big[-20:], oracle.run(queries[-20:]).y[:, 0])


def test_query_keys_depend_on_seed_and_bytes():
    q = np.array([[0.1, 0.2, 0.3], [0.1, 0.2, np.nextafter(0.3, 1.0)], [0.1, 0.2, 0.3]])
    data = np.asarray(jax.random.key_data(query_keys(q, seed=7)))
    assert np.array_equal(data[0], data[2]) and not np.array_equal(data[0], data[1])
    other = np.asarray(jax.random.key_data(query_keys(q, seed=8)))
    assert not np.array_equal(data[0], other[0])


def test_langevin_changes_results_and_is_deterministic_per_seed():
    queries = make_oracle().space.draw(40, seed=2)
    queries[:, 2] += 1.0  # t >= 1, so the thermostat has time to act
    hamiltonian = make_oracle().run(queries).y[:, 0]
    langevin = make_oracle(gamma=1.0, kT=0.5, seed=3)
    a = langevin.run(queries)
    assert a.ok.all()
    assert np.all(np.abs(a.y[:, 0] - hamiltonian) > 1e-4)
    assert np.array_equal(a.y[::-1, 0], langevin.run(queries[::-1]).y[:, 0])
    fresh = make_oracle(gamma=1.0, kT=0.5, seed=3)
    assert np.array_equal(a.y[:5, 0], fresh.run(queries[:5]).y[:, 0])
    assert np.all(make_oracle(gamma=1.0, kT=0.5, seed=4).run(queries).y[:, 0] != a.y[:, 0])


def test_langevin_without_friction_is_verlet_and_with_friction_only_dissipates():
    x0, v0, t = random_starts(30, seed=4, t_max=5.0)
    keys = jax.random.split(jax.random.key(0), 30)
    assert np.allclose(langevin_end(x0, v0, t, keys, gamma=0.0, kT=0.0),
                       trajectory_end(x0, v0, t), atol=1e-4)
    # kT = 0: pure friction, so a particle started at rest can only settle lower in the well.
    x = langevin_end(x0, np.zeros(30), t + 1.0, keys, gamma=0.5, kT=0.0)
    assert np.all(potential_energy(x) <= potential_energy(x0) + 1e-6)


def test_langevin_samples_the_boltzmann_distribution():
    kT, n = 0.5, 4000
    rng = np.random.default_rng(5)
    queries = np.c_[rng.uniform(-0.5, 0.5, n), rng.uniform(-0.5, 0.5, n), rng.uniform(15, 20, n)]
    x = make_oracle(gamma=1.0, kT=kT, seed=0, t_range=(0.0, 20.0)).run(queries).y[:, 0]
    V = POTENTIALS["anharmonic"].V
    weight = lambda z: float(np.exp(-V(z) / kT))  # noqa: E731
    z = quad(weight, -np.inf, np.inf)[0]
    expected_x2 = quad(lambda s: s * s * weight(s), -np.inf, np.inf)[0] / z
    assert np.mean(x**2) == pytest.approx(expected_x2, rel=0.06)
    assert abs(np.mean(x)) < 4 * np.sqrt(expected_x2 / n)


def test_negative_time_fails_only_that_langevin_run():
    oracle = make_oracle(gamma=1.0, kT=0.1)
    outcome = oracle.run(np.array([[0.5, 0.0, 1.0], [0.5, 0.0, -1.0]]))
    assert outcome.ok.tolist() == [True, False]
    assert "t >= 0" in outcome.error[1]


# --- validation -------------------------------------------------------------------------------


def test_unknown_potential_lists_valid_names():
    with pytest.raises(ValueError, match="anharmonic.*double_well.*morse.*pendulum"):
        make_oracle(potential="quartic")
    with pytest.raises(ValueError, match="unknown potential"):
        trajectory_end(0.0, 0.0, 1.0, potential="harmonic")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_steps": 0}, "n_steps.*0"),
        ({"n_steps": 2.5}, "n_steps.*2.5"),
        ({"noise_std": -0.1}, "noise_std.*-0.1"),
        ({"noise_std": float("nan")}, "noise_std.*nan"),
        ({"x0_range": (2.0, -2.0)}, "x0_range"),
        ({"v0_range": (1.0,)}, "v0_range"),
        ({"t_range": (-1.0, 5.0)}, "t_range.*-1"),
        ({"t_range": (0.0, float("inf"))}, "t_range"),
        ({"gamma": -1.0}, "gamma.*-1"),
        ({"kT": -1.0, "gamma": 1.0}, "kT.*-1"),
        ({"kT": 1.0}, "kT.*gamma"),
        ({"seed": -1}, "seed.*-1"),
        ({"seed": 1.5}, "seed.*1.5"),
        ({"dtype": "int32"}, "dtype.*int32"),
    ],
)
def test_bad_parameters_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_oracle(**kwargs)


def test_float64_needs_x64_mode():
    with pytest.raises(ValueError, match="float64"):
        trajectory_end(0.0, 1.0, 1.0, dtype="float64")
    with jax.enable_x64(True):
        x = make_oracle(dtype="float64").run(np.array([[1.0, 0.0, 2.0]])).y[0, 0]
        assert trajectory_end(1.0, 0.0, 2.0, dtype="float64").dtype == np.float64
    assert x == pytest.approx(reference_end("anharmonic", [1.0], [0.0], [2.0])[0], abs=1e-5)
