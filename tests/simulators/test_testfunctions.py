"""simulators/testfunctions: reference values, domains, determinism, and the Hydra configs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from sklearn.datasets import make_friedman1

from alframe.oracle import FunctionOracle, Oracle
from alframe.space import Box
from simulators.testfunctions import (
    BOREHOLE_DOMAIN,
    ISHIGAMI_DOMAIN,
    OTL_DOMAIN,
    PISTON_DOMAIN,
    Ishigami,
    borehole,
    friedman,
    heteroscedastic_sine_test_set,
    make_friedman,
    make_cubic_root,
    make_friedman_corner,
    make_genz_discontinuous,
    make_genz_gaussian_peak,
    make_heteroscedastic_sine,
    make_ishigami,
    make_ishigami_hole,
    otl_circuit,
    piston,
    sine_mean,
    standard_normals,
)
from simulators.testfunctions.functions import (
    ENVIRONMENTAL_DOMAIN,
    ENVIRONMENTAL_PLACES,
    ENVIRONMENTAL_TIMES,
    WING_DOMAIN,
    environmental,
    genz_discontinuous_function,
    genz_gaussian_peak_function,
    hartmann6,
    robot_arm,
    wing_weight,
)
from simulators.testfunctions.functions import (
    branin,
    currin,
    dette_pepelyshev,
    driven_pendulum,
    franke,
    gramacy_lee,
    sir_epidemic,
    sobol_g,
    standard_map_megno,
    welch,
)

CONF = Path(__file__).resolve().parents[2] / "conf"

# Reference outputs of an independent implementation of the VLSE formulas (uqtestfuns 0.7.0,
# Wicaksono & Hecht 2023, its `evaluate` functions) at u = 0.5 (the box's centre), u = 0,
# u = 1 and u = linspace(0.1, 0.9, dim) mapped onto the VLSE domains.
REFERENCE = {
    "borehole": (borehole, BOREHOLE_DOMAIN, [70.87291263681897, 20.01478331243087, 145.68027003845495,
                                             22.471823887418644]),
    "otl_circuit": (otl_circuit, OTL_DOMAIN, [5.310616942188329, 5.055138588912886, 5.4519642062149405,
                                              5.884387812173879]),
    "piston": (piston, PISTON_DOMAIN, [0.4643970224718025, 0.46700283916057495, 0.43476797627910463,
                                       0.48835317507259823]),
}

# conf/simulator/<name>.yaml -> (input dim, output name, (min, max) the outputs stay within on the box)
CONFIGS = {
    "ishigami": (3, "y", (-11.0, 18.0)),  # |sin x1 (1 + 0.1 x3^4)| <= 1 + 0.1 pi^4 = 10.74; 7 sin^2 x2 in [0, 7]
    "borehole": (8, "flow_rate", (0.0, 320.0)),
    "otl_circuit": (6, "Vm", (0.0, 12.0)),
    "piston": (7, "cycle_time", (0.0, 2.0)),
    "friedman": (5, "y", (-10.0, 30.0)),
    "friedman10": (10, "y", (-10.0, 30.0)),
    "genz_discontinuous": (2, "y", (0.0, math.exp(5.0) + 1e-9)),
    "genz_gaussian_peak": (2, "y", (0.0, 1.0)),
    "heteroscedastic_sine": (1, "y", (-12.0, 12.0)),
    "wing_weight": (10, "weight", (120.0, 500.0)),
    "robot_arm": (8, "distance", (0.0, 4.0)),
    "hartmann6": (6, "y", (-3.33, 0.0)),
    "sobol_g": (8, "y", (0.0, 2 * 3 / 2 * 5.5 / 5 * 10 / 10 * 1.01**4)),  # each factor <= (2 + a) / (1 + a)
    "welch": (20, "y", (-12.0, 12.0)),
    "dette_pepelyshev": (8, "y", (0.0, 200.0)),
    "gramacy_lee": (6, "y", (0.0, math.e + 2.0)),
    "franke": (2, "y", (-0.2, 1.3)),
    "currin": (2, "y", (0.0, 14.0)),
    "branin": (2, "y", (0.397, 309.0)),
}


def composed(*overrides):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def reference_points(domain) -> np.ndarray:
    lower, upper = (np.array(b) for b in domain)
    dim = len(lower)
    u = np.array([np.full(dim, 0.5), np.zeros(dim), np.ones(dim), np.linspace(0.1, 0.9, dim)])
    return lower + u * (upper - lower)


# -- reference values ---------------------------------------------------------------------


def test_ishigami_at_documented_points():
    f = Ishigami()
    x = np.array([[0.0, 0.0, 0.0], [np.pi / 2, np.pi / 2, np.pi / 2], [np.pi / 2, 0.0, np.pi]])
    expected = [0.0, 1 + 7 + 0.1 * (np.pi / 2) ** 4, 1 + 0.1 * np.pi**4]
    np.testing.assert_allclose(f(x), expected, rtol=1e-12, atol=1e-12)


def test_ishigami_mean_and_variance_match_the_analytic_values():
    oracle = make_ishigami()
    x = oracle.space.draw(200_000, seed=1)
    y = oracle.fn(x)
    assert Ishigami().mean == 3.5
    assert Ishigami().variance == pytest.approx(13.8446, abs=1e-4)  # a^2/8 + b pi^4/5 + b^2 pi^8/18 + 1/2
    assert y.mean() == pytest.approx(3.5, rel=1e-2)
    assert y.var() == pytest.approx(Ishigami().variance, rel=2e-2)


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_engineering_functions_match_an_independent_implementation(name):
    fn, domain, expected = REFERENCE[name]
    np.testing.assert_allclose(fn(reference_points(domain)), expected, rtol=1e-12)


def test_borehole_flow_is_proportional_to_the_head_difference():
    x = reference_points(BOREHOLE_DOMAIN)
    wider = x.copy()
    wider[:, 5] = x[:, 3] - 2 * (x[:, 3] - x[:, 5])  # Hl moved so that Hu - Hl doubles
    np.testing.assert_allclose(borehole(wider), 2 * borehole(x), rtol=1e-12)


def test_friedman_matches_scikit_learns_noise_free_generator():
    x, y = make_friedman1(n_samples=500, n_features=10, noise=0.0, random_state=3)
    np.testing.assert_allclose(friedman(x), y, rtol=1e-12)
    np.testing.assert_allclose(friedman(x[:, :5]), y, rtol=1e-12)
    assert friedman(np.full((1, 5), 0.5))[0] == pytest.approx(10 * np.sin(np.pi / 4) + 7.5)


def test_friedman10_ignores_its_inert_inputs():
    oracle = make_friedman(10)
    x = oracle.space.draw(64, seed=0)
    shuffled = x.copy()
    shuffled[:, 5:] = np.random.default_rng(1).random((64, 5))
    np.testing.assert_array_equal(oracle.run(x).y, oracle.run(shuffled).y)


@pytest.mark.parametrize("failing, whole, share", [(make_friedman_corner, make_friedman, 0.18),
                                                    (make_ishigami_hole, make_ishigami, 1.5**2 * math.pi / (2 * math.pi) ** 2)])
def test_failing_variants_fail_on_their_region_and_agree_elsewhere(failing, whole, share):
    oracle, full = failing(), whole()
    x = oracle.space.draw(4000, seed=0)
    outcome, reference = oracle.run(x), full.run(x)
    assert abs(1 - outcome.ok.mean() - share) < 0.02
    np.testing.assert_array_equal(outcome.y[outcome.ok], reference.y[outcome.ok])
    assert all("finite" in str(e) for e in outcome.error[~outcome.ok][:5])


def test_cubic_root_is_the_largest_real_root_and_fails_where_only_one_is_real():
    oracle = make_cubic_root()
    x = oracle.space.draw(400, seed=1)
    outcome = oracle.run(x)
    assert 0.2 < 1 - outcome.ok.mean() < 0.3
    for (p, q, c), y, ok in zip(x[:40], outcome.y[:40, 0], outcome.ok[:40]):
        roots = np.roots([1.0, 0.0, p, q])
        real = roots[np.abs(roots.imag) < 1e-9].real
        assert ok == (len(real) == 3)
        if ok:
            assert y == pytest.approx(real.max() + c, abs=1e-9)


def test_genz_discontinuous_values_and_integral():
    f = genz_discontinuous_function()
    x = np.array([[0.25, 0.25], [0.5, 0.5], [0.6, 0.1], [0.1, 0.2], [0.1, 0.51]])
    # The first four from uqtestfuns 0.7.0's Genz (1984) discontinuous function (a = 5, u = 0.5).
    np.testing.assert_allclose(f(x), [12.182493960703473, 148.4131591025766, 0.0, 4.4816890703380645, 0.0],
                               rtol=1e-12)
    assert f.integral == pytest.approx(((math.exp(2.5) - 1) / 5) ** 2, rel=1e-12)
    grid = (np.arange(2000) + 0.5) / 2000
    midpoint = f(np.stack(np.meshgrid(grid, grid), -1).reshape(-1, 2)).mean()
    assert midpoint == pytest.approx(f.integral, rel=1e-3)


def test_genz_discontinuous_3d_cuts_only_on_the_first_two_inputs():
    f = genz_discontinuous_function(3)
    assert f(np.array([[0.1, 0.1, 0.9]]))[0] == pytest.approx(math.exp(5 * 1.1))
    assert f.integral == pytest.approx(((math.exp(2.5) - 1) / 5) ** 2 * (math.exp(5) - 1) / 5)


def test_genz_gaussian_peak_values_width_and_integral():
    f = genz_gaussian_peak_function()
    x = np.array([[0.5, 0.5], [0.55, 0.45], [0.3, 0.7]])
    # uqtestfuns 0.7.0's Genz (1984) Gaussian function with a = 15, u = 0.5.
    np.testing.assert_allclose(f(x), [1.0, 0.32465246735834952, 1.5229979744712682e-08], rtol=1e-12)
    sd = 1 / (15 * math.sqrt(2))
    assert f(np.array([[0.5 + sd, 0.5]]))[0] == pytest.approx(math.exp(-0.5))
    grid = (np.arange(2000) + 0.5) / 2000
    midpoint = f(np.stack(np.meshgrid(grid, grid), -1).reshape(-1, 2)).mean()
    assert midpoint == pytest.approx(f.integral, rel=1e-6)
    assert f.integral == pytest.approx(math.pi / 225, rel=1e-6)  # the whole peak fits in the cube


# -- the heteroscedastic sine ---------------------------------------------------------------


def test_heteroscedastic_noise_is_a_function_of_the_input_and_seed():
    oracle = make_heteroscedastic_sine(seed=5)
    x = oracle.space.draw(50, seed=0)
    first = oracle.run(x).y
    order = np.random.default_rng(0).permutation(50)
    np.testing.assert_array_equal(oracle.run(x[order]).y, first[order])  # any batch, any order
    np.testing.assert_array_equal(make_heteroscedastic_sine(seed=5).run(x[:7]).y, first[:7])
    assert not np.allclose(make_heteroscedastic_sine(seed=6).run(x).y, first)
    np.testing.assert_array_equal(standard_normals(np.array([[-0.0]]), 5), standard_normals(np.array([[0.0]]), 5))


def test_heteroscedastic_noise_sd_rises_across_the_box():
    oracle = make_heteroscedastic_sine(seed=0)
    for centre, sd in ((0.05, 0.55), (0.95, 1.45)):
        x = centre + np.linspace(-0.01, 0.01, 4000)[:, None]
        residual = oracle.run(x).y[:, 0] - sine_mean(x)
        assert residual.std() == pytest.approx(sd, rel=0.06)
        assert abs(residual.mean()) < 4 * sd / math.sqrt(4000)


def test_heteroscedastic_test_set_is_the_noise_free_mean():
    x, y = heteroscedastic_sine_test_set(300, seed=2)
    assert x.shape == (300, 1) and y.shape == (300, 1)
    assert np.all((x >= 0) & (x <= 1))
    np.testing.assert_allclose(y[:, 0], 2 * np.sin(2 * np.pi * x[:, 0]), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(heteroscedastic_sine_test_set(300, seed=2)[0], x)


def test_hartmann6_global_minimum_and_near_zero_corners():
    # VLSE: the minimum -3.32237 at (0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573).
    best = np.array([[0.20169, 0.150011, 0.476874, 0.275332, 0.311652, 0.6573]])
    assert hartmann6(best)[0] == pytest.approx(-3.32237, abs=1e-5)
    cube = np.random.default_rng(0).uniform(size=(20000, 6))
    assert hartmann6(cube).min() > -3.32237
    assert abs(hartmann6(np.ones((1, 6)))[0]) < 0.01  # far from every well


def test_robot_arm_stretched_folded_and_rotated():
    stretched = np.array([[0.3, 0.0, 0.0, 0.0, 1.0, 0.5, 0.25, 0.25]])
    assert robot_arm(stretched)[0] == pytest.approx(2.0)
    folded = np.array([[1.0, np.pi, 0.0, 0.0, 1.0, 0.5, 0.25, 0.25]])  # out 1, back 0.5 + 0.25 + 0.25
    assert robot_arm(folded)[0] == pytest.approx(0.0, abs=1e-12)
    x = np.random.default_rng(1).uniform(size=(50, 8)) * np.r_[[2 * np.pi] * 4, [1.0] * 4]
    turned = x.copy()
    turned[:, 0] += 1.234  # turning the shoulder moves the end, not its distance
    np.testing.assert_allclose(robot_arm(turned), robot_arm(x), rtol=1e-12)


def test_wing_weight_paint_term_and_sweep_symmetry():
    lower, upper = (np.array(b) for b in WING_DOMAIN)
    x = lower + np.random.default_rng(2).uniform(size=(40, 10)) * (upper - lower)
    painted = x.copy()
    painted[:, 9] += 0.01
    np.testing.assert_allclose(wing_weight(painted) - wing_weight(x), 0.01 * x[:, 0], rtol=1e-9)
    mirrored = x.copy()
    mirrored[:, 3] *= -1  # the sweep enters through its cosine only
    np.testing.assert_allclose(wing_weight(mirrored), wing_weight(x), rtol=1e-12)


def test_environmental_before_and_after_the_second_spill():
    lower, upper = (np.array(b) for b in ENVIRONMENTAL_DOMAIN)
    x = (lower + upper)[None] / 2
    c = environmental(x).reshape(len(ENVIRONMENTAL_PLACES), len(ENVIRONMENTAL_TIMES))
    m, d, length, tau = x[0]
    for i, s in enumerate(ENVIRONMENTAL_PLACES):
        for j, t in enumerate(ENVIRONMENTAL_TIMES):
            first = m / math.sqrt(4 * math.pi * d * t) * math.exp(-s**2 / (4 * d * t))
            second = (m / math.sqrt(4 * math.pi * d * (t - tau)) * math.exp(-(s - length) ** 2 / (4 * d * (t - tau)))
                      if t > tau else 0.0)
            assert c[i, j] == pytest.approx(first + second, rel=1e-12)
    doubled = x.copy()
    doubled[0, 0] *= 2  # linear in the spilled mass
    np.testing.assert_allclose(environmental(doubled), 2 * environmental(x), rtol=1e-12)


def test_environmental_config_has_thirty_named_outputs_with_coordinates():
    oracle = instantiate(composed("simulator=environmental").simulator)
    assert oracle.space.dim == 4 and len(oracle.outputs.names) == 30
    assert oracle.outputs.names[2] == "C_s0.5_t31" and oracle.outputs.coords[2] == "s=0.5 t=31"
    outcome = oracle.run(oracle.space.draw(64, seed=0))
    assert outcome.y.shape == (64, 30) and outcome.ok.all() and np.all(outcome.y > 0)


def test_sobol_g_vanishes_on_its_first_kink_and_has_mean_one():
    x = np.random.default_rng(0).uniform(size=(200_000, 8))
    assert sobol_g(np.full((1, 8), 0.5))[0] == 0.0
    assert sobol_g(np.zeros((1, 8)))[0] == pytest.approx(2 * 1.5 * 6.5 / 5.5 * 11 / 10 * (101 / 100) ** 4)
    assert sobol_g(x).mean() == pytest.approx(1.0, abs=0.01)


def test_welch_terms_and_inert_inputs():
    assert welch(np.zeros((1, 20)))[0] == 0.0
    e = np.eye(20) * 0.5
    # x12 = 0.5 alone gives 5 x12 / (1 + x1) = 2.5; x19 = 0.5 gives 40/8 - 2.5; x8 and x16 do nothing.
    assert welch(e[[11, 18, 7, 15]]).tolist() == pytest.approx([2.5, 2.5, 0.0, 0.0])


def test_dette_pepelyshev_at_the_origin_and_a_corner():
    # 4 (-2)^2 + 3^2 + 16 (1)(1) = 41 at the origin; at x = 1: 4 (1 - 2)^2 + 1 + 16 sqrt 2 + sum_i i ln(1 + i - 2)
    assert dette_pepelyshev(np.zeros((1, 8)))[0] == pytest.approx(41.0)
    corner = 4 + 1 + 16 * math.sqrt(2) + sum(i * math.log(i - 1) for i in range(4, 9))
    assert dette_pepelyshev(np.ones((1, 8)))[0] == pytest.approx(corner)


def test_gramacy_lee_is_flat_in_x1_then_oscillates_and_ignores_x5_x6():
    x = np.zeros((3, 6))
    x[:, 0] = [0.0, 0.1, 0.3]
    assert np.ptp(gramacy_lee(x)) < 0.05  # (0.9 (x1 + 0.48))^10 <= 0.03 for x1 <= 0.3
    near_one = np.zeros((200, 6))
    near_one[:, 0] = np.linspace(0.9, 1.0, 200)
    assert np.ptp(gramacy_lee(near_one)) > 1.5
    moved = np.zeros((1, 6))
    moved[0, 4:] = 0.7
    assert gramacy_lee(moved)[0] == gramacy_lee(np.zeros((1, 6)))[0]


def test_the_plane_functions_at_known_points():
    assert branin(np.array([[-math.pi, 12.275], [math.pi, 2.275], [9.42478, 2.475]])) == pytest.approx(0.397887, abs=1e-5)
    # Currin: x2 -> 0 makes the first factor 1, leaving 60 / 20 at x1 = 0.
    assert currin(np.array([[0.0, 0.0], [0.5, 0.5]])) == pytest.approx([3.0, (1 - math.exp(-1)) * 1868.5 / 159.5])
    assert franke(np.array([[2 / 9, 2 / 9]]))[0] == pytest.approx(
        0.75 + 0.75 * math.exp(-9 / 49 - 0.3) + 0.5 * math.exp(-25 / 4 - 1 / 4) - 0.2 * math.exp(-4 - 25))


def test_sir_epidemic_matches_an_ode_solver_and_conserves_people():
    from scipy.integrate import solve_ivp

    x = np.array([[0.4, 0.1, 1e-3], [0.15, 0.25, 1e-2], [0.6, 0.05, 1e-4]])
    y = sir_epidemic(x)
    assert y.shape == (3, 12) and np.all(y > 0) and np.all(y < 1)
    for (beta, gamma, i0), row in zip(x, y):
        exact = solve_ivp(lambda t, u, b=beta, g=gamma: [-b * u[0] * u[1], b * u[0] * u[1] - g * u[1]], (0, 120),
                          [1 - i0, i0], t_eval=np.arange(10, 130, 10), rtol=1e-10, atol=1e-15).y[1]
        assert row == pytest.approx(exact, rel=1e-5, abs=1e-12)
    assert np.all(np.diff(y[1]) < 0)  # beta / gamma < 1: the infection only dies out


def test_sir_config_has_twelve_daily_outputs_and_a_log_input():
    oracle = instantiate(composed("simulator=sir_epidemic").simulator)
    assert oracle.space.names == ("beta", "gamma", "i0") and oracle.space.log == ("i0",)
    assert oracle.outputs.coords == tuple(float(d) for d in range(10, 130, 10)) and oracle.outputs.coord_name == "day"
    outcome = oracle.run(oracle.space.draw(64, seed=1))
    assert outcome.y.shape == (64, 12) and outcome.ok.all() and np.all(outcome.y > 0)


def test_megno_is_two_on_regular_orbits_and_grows_with_the_lyapunov_exponent_on_chaotic_ones():
    rng = np.random.default_rng(0)
    angles = rng.uniform(0, 2 * math.pi, (20, 2))
    rotations = standard_map_megno(np.column_stack([np.zeros(20), angles]))  # K = 0: every orbit a rotation
    assert rotations == pytest.approx(2.0, abs=0.06)
    # Far above the breakup, orbits are chaotic with lambda close to ln(K / 2) (Chirikov 1979).
    chaotic = standard_map_megno(np.column_stack([np.full(20, 6.0), angles]))
    assert np.median(chaotic) == pytest.approx(math.log(3.0) * 500 / 2, rel=0.15)
    # Both angles are periodic, and below the breakup chaos fills only thin layers of the box.
    x = np.column_stack([rng.uniform(0.2, 0.97, 2000), rng.uniform(0, 2 * math.pi, (2000, 2))])
    y = standard_map_megno(x)
    regular = x[y < 3][:50]  # a chaotic orbit's rounding errors grow as fast as its neighbours part
    np.testing.assert_allclose(standard_map_megno(regular + [0, 2 * math.pi, -2 * math.pi]),
                               standard_map_megno(regular), rtol=1e-4)
    assert 0.04 < np.mean(y > 3) < 0.15 and np.median(y) == pytest.approx(2.0, abs=0.2)


def test_driven_pendulum_matches_an_ode_solver_and_small_free_swings():
    from scipy.integrate import solve_ivp

    from simulators.testfunctions.functions import PENDULUM_TIMES

    x = np.array([[0.5, 0.6, 1.0, 0.3], [0.1, 0.8, 0.9, -1.0], [1.0, 0.0, 1.5, 1.0]])
    y = driven_pendulum(x)
    assert y.shape == (3, 30)
    for (damping, drive, frequency, theta0), row in zip(x, y):
        exact = solve_ivp(lambda t, u, c=damping, a=drive, w=frequency: [u[1], -c * u[1] - math.sin(u[0]) + a * math.cos(w * t)],
                          (0, 15), [theta0, 0.0], t_eval=PENDULUM_TIMES, rtol=1e-11, atol=1e-13).y[0]
        assert row == pytest.approx(exact, abs=1e-7)
    # Undriven and small: a damped harmonic oscillator.
    damping, theta0 = 0.4, 1e-4
    free = driven_pendulum(np.array([[damping, 0.0, 1.0, theta0]]))[0]
    t = np.asarray(PENDULUM_TIMES)
    omega = math.sqrt(1 - damping**2 / 4)
    linear = theta0 * np.exp(-damping * t / 2) * (np.cos(omega * t) + damping / (2 * omega) * np.sin(omega * t))
    assert free == pytest.approx(linear, abs=1e-9)


def test_standard_map_and_pendulum_configs():
    megno = instantiate(composed("simulator=standard_map").simulator)
    assert megno.space.names == ("K", "theta0", "p0") and megno.space.periodic == ("theta0", "p0")
    pendulum = instantiate(composed("simulator=driven_pendulum").simulator)
    assert pendulum.outputs.coord_name == "time" and len(pendulum.outputs.names) == 30
    for oracle in (megno, pendulum):
        outcome = oracle.run(oracle.space.draw(16, seed=1))
        assert outcome.ok.all() and np.all(np.isfinite(outcome.y))


def test_lotka_volterra_matches_an_ode_solver():
    from scipy.integrate import solve_ivp

    from simulators.testfunctions.functions import LOTKA_DOMAIN, lotka_volterra

    lower, upper = np.array(LOTKA_DOMAIN)
    x = lower + (upper - lower) * np.random.default_rng(0).uniform(size=(4, 4))
    for (a, b, c, d), predators in zip(x, lotka_volterra(x)):
        exact = solve_ivp(lambda t, u: [a * u[0] - b * u[0] * u[1], d * u[0] * u[1] - c * u[1]], (0, 15), [10.0, 5.0],
                          rtol=1e-11, atol=1e-12).y[1, -1]
        assert predators == pytest.approx(exact, rel=1e-6)


def test_resonance_peaks_at_the_natural_frequency():
    from simulators.testfunctions.functions import resonance

    y = resonance(np.array([[1.0, 0.01, 1.0], [1.0, 0.5, 2.0], [0.5, 0.1, 1.0]]))
    assert y[:2] == pytest.approx([50.0, 2.0])  # F / (2 zeta) at r = 1
    assert y[2] == pytest.approx(1 / math.sqrt(0.75**2 + 0.1**2))


def test_projectile_range_is_the_parabola_without_drag_and_matches_an_ode_solver_with_it():
    from scipy.integrate import solve_ivp

    from simulators.testfunctions.functions import GRAVITY, projectile_range

    vacuum = projectile_range(np.array([[50.0, 30.0, 0.0], [20.0, 75.0, 0.0]]))
    assert vacuum == pytest.approx([50.0**2 * math.sin(math.radians(60)) / GRAVITY,
                                    20.0**2 * math.sin(math.radians(150)) / GRAVITY], rel=1e-6)
    x = np.array([[80.0, 45.0, 1e-2], [30.0, 20.0, 1e-3], [100.0, 70.0, 0.1]])

    def ground(_t, u):
        return u[1]
    ground.terminal, ground.direction = True, -1
    for (speed, elevation, drag), landed in zip(x, projectile_range(x)):
        angle = math.radians(elevation)
        slope = lambda t, u, k=drag: [u[2], u[3], -k * math.hypot(u[2], u[3]) * u[2],  # noqa: E731
                                      -GRAVITY - k * math.hypot(u[2], u[3]) * u[3]]
        solution = solve_ivp(slope, (0, 100), [0, 0, speed * math.cos(angle), speed * math.sin(angle)],
                             events=ground, rtol=1e-11, atol=1e-9)
        assert landed == pytest.approx(solution.y_events[0][0][0], rel=1e-4)
    assert np.all(np.diff(projectile_range(np.array([[60.0, 40.0, k] for k in (1e-4, 1e-3, 1e-2, 1e-1)]))) < 0)


def test_ringdown_and_the_pendulum_flip():
    from scipy.integrate import solve_ivp

    from simulators.testfunctions.functions import FLIP_CHECKS, RINGDOWN_TIMES, pendulum_flip, ringdown

    signal = ringdown(np.array([[2.0, 0.3, 1.0]]))
    assert signal.shape == (1, 100)
    assert signal[0] == pytest.approx(np.exp(-0.3 * np.asarray(RINGDOWN_TIMES)) * np.cos(2.0 * np.asarray(RINGDOWN_TIMES) + 1.0))
    # Energy omega0^2 / 2 - cos(theta0) above 1 is needed to pass the top; lightly damped, a
    # start from the bottom at omega0 = 2.5 flips and at 1.5 does not.
    assert pendulum_flip(np.array([[0.0, 2.5, 0.01], [0.0, 1.5, 0.01]])).tolist() == [1.0, 0.0]
    x = np.column_stack([np.random.default_rng(1).uniform(-math.pi, math.pi, 12),
                         np.random.default_rng(2).uniform(-3, 3, 12), np.full(12, 0.2)])
    for (theta0, omega0, damping), flipped in zip(x, pendulum_flip(x)):
        path = solve_ivp(lambda t, u: [u[1], -damping * u[1] - math.sin(u[0])], (0, 20.1), [theta0, omega0],
                         t_eval=FLIP_CHECKS, rtol=1e-10, atol=1e-12).y[0]
        assert flipped == float(np.any(np.abs(path) > math.pi))


def test_configs_from_other_fields():
    resonance = instantiate(composed("simulator=resonance").simulator)
    projectile = instantiate(composed("simulator=projectile").simulator)
    ringdown = instantiate(composed("simulator=ringdown").simulator)
    flip = instantiate(composed("simulator=pendulum_flip").simulator)
    lotka = instantiate(composed("simulator=lotka_volterra").simulator)
    assert resonance.space.log == ("damping_ratio",) and projectile.space.log == ("drag",)
    assert ringdown.space.periodic == ("phase",) and ringdown.outputs.coord_name == "time"
    assert flip.outputs.task == "classification" and flip.outputs.classes == ("stays", "flips")
    for oracle in (resonance, projectile, ringdown, flip, lotka):
        outcome = oracle.run(oracle.space.draw(16, seed=1))
        assert outcome.ok.all() and np.all(np.isfinite(outcome.y))


# -- domains and errors -------------------------------------------------------------------


@pytest.mark.parametrize(("name", "domain"), [("ishigami", ISHIGAMI_DOMAIN), ("borehole", BOREHOLE_DOMAIN),
                                              ("otl_circuit", OTL_DOMAIN), ("piston", PISTON_DOMAIN)])
def test_oracle_boxes_are_the_documented_domains(name, domain):
    oracle = instantiate(composed(f"simulator={name}").simulator)
    assert isinstance(oracle.space, Box)
    assert (oracle.space.lower, oracle.space.upper) == domain
    assert oracle.space.log == ()  # every input uniform, as documented


def test_vlse_borehole_ranges():
    lower, upper = BOREHOLE_DOMAIN
    assert lower == (0.05, 100.0, 63070.0, 990.0, 63.1, 700.0, 1120.0, 9855.0)
    assert upper == (0.15, 50000.0, 115600.0, 1110.0, 116.0, 820.0, 1680.0, 12045.0)


def test_unit_cube_problems_and_ishigami_box():
    assert ISHIGAMI_DOMAIN == ((-math.pi,) * 3, (math.pi,) * 3)
    for oracle in (make_friedman(5), make_genz_discontinuous(), make_genz_gaussian_peak(), make_heteroscedastic_sine()):
        assert set(oracle.space.lower) == {0.0} and set(oracle.space.upper) == {1.0}


def test_bad_shapes_and_parameters_name_the_problem():
    with pytest.raises(ValueError, match=r"borehole takes shape \(n, 8\)"):
        borehole(np.zeros((3, 7)))
    with pytest.raises(ValueError, match="n_inputs >= 5"):
        make_friedman(4)
    with pytest.raises(ValueError, match="dim >= 2"):
        make_genz_discontinuous(dim=1)
    with pytest.raises(ValueError, match="widths a must be > 0"):
        make_genz_gaussian_peak(a=0.0)
    with pytest.raises(ValueError, match="needs a number or 2 numbers"):
        make_genz_gaussian_peak(a=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"seed must be an integer in \[0, 2\*\*32\)"):
        make_heteroscedastic_sine(seed=-1)
    with pytest.raises(ValueError, match="sds must be >= 0"):
        make_heteroscedastic_sine(sd_low=-0.1)
    with pytest.raises(ValueError, match="a must be finite"):
        make_ishigami(a=float("nan"))


def test_a_failing_query_fails_alone():
    oracle = make_ishigami()
    x = np.array([[0.0, 0.0, 0.0], [np.nan, 0.0, 0.0]])
    outcome = oracle.run(x)
    assert outcome.ok.tolist() == [True, False]
    assert outcome.error[1] == "non-finite output y"


# -- the Hydra configs --------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_config_instantiates_an_oracle(name):
    dim, output, (low, high) = CONFIGS[name]
    cfg = composed(f"simulator={name}", "seed=3")
    oracle = instantiate(cfg.simulator)
    assert isinstance(oracle, FunctionOracle) and isinstance(oracle, Oracle)
    assert oracle.space.dim == dim and oracle.outputs.names == (output,)
    x = oracle.space.draw(256, seed=0)
    outcome = oracle.run(x)
    assert outcome.y.shape == (256, 1) and outcome.ok.all()
    assert np.all((outcome.y >= low) & (outcome.y <= high)), (outcome.y.min(), outcome.y.max())
    assert (cfg.get("test_set") is not None) == (name == "heteroscedastic_sine")


def test_heteroscedastic_config_gives_a_noise_free_test_set_and_seeded_noise():
    cfg = composed("simulator=heteroscedastic_sine", "seed=4", "test_size=128")
    oracle = instantiate(cfg.simulator)
    assert oracle.fn.seed == 4
    x, y = instantiate(cfg.test_set)
    assert x.shape == (128, 1) and y.shape == (128, 1)
    np.testing.assert_array_equal(y[:, 0], sine_mean(x))
    noisy = oracle.run(x).y
    assert np.abs(noisy - y).max() > 0.5  # the oracle's own answers carry the noise


def test_friedman10_config_extends_friedman():
    cfg = composed("simulator=friedman10")
    assert cfg.simulator._target_ == "simulators.testfunctions.make_friedman" and cfg.simulator.n_inputs == 10
