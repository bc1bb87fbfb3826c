"""The default committee and its families: the Gaussian process, the early-stopped MLP, the
out-of-bag forest, and the choice among them by held-out error."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest
from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor

from alframe.learners import AutoCommittee, EnsembleCommittee, GaussianProcessCommittee, LogOutputs, MLPCommittee
from alframe.learners.auto import LOG_SPAN, held_out_error
from alframe.learners.base import observation_noise, output_spread
from alframe.learners.coordinates import in_space_coordinates
from alframe.learners.output_units import in_float32_range
from alframe.space import Box
from alframe.strategies.diversity import noise_in_deviation_units

KEY = jax.random.key(0)
RNG = np.random.default_rng(0)


def smooth(x):
    return np.sin(2 * x[:, :1]) + x[:, 1:2] ** 2


def step(x):
    return np.where(x[:, :1] + x[:, 1:2] > 0.2, 3.0, 0.0)


def r2(committee, fn, dim=2):
    x = RNG.uniform(-1, 1, (500, dim))
    y = fn(x)
    pred = np.asarray(committee.predict_members(x)).mean(axis=0)
    return 1 - np.mean((pred - y) ** 2) / y.var()


def test_held_out_error_is_one_for_the_mean_and_zero_for_the_truth():
    y = RNG.normal(size=(200, 2)) * [1.0, 100.0]
    assert held_out_error(np.broadcast_to(y.mean(0), y.shape), y, task="regression") == pytest.approx(1.0)
    assert held_out_error(y, y, task="regression") == 0.0
    labels = np.array([0, 1, 1])
    assert held_out_error(np.eye(2)[labels], labels, task="classification", n_classes=2) == 0.0


def test_gp_learns_a_smooth_function_and_its_members_centre_on_its_mean():
    x = RNG.uniform(-1, 1, (60, 2))
    gp = GaussianProcessCommittee(folds=3).fit(x, smooth(x), key=KEY)
    members = np.asarray(gp.predict_members(x[:5]))
    assert members.shape == (6, 5, 1)
    assert r2(gp, smooth) > 0.99
    mean = gp.fitted.gp.predict((x[:5] - gp.fitted.lo) / gp.fitted.scale).reshape(5, 1) * gp.fitted.y_unit
    np.testing.assert_allclose(members.mean(axis=0), mean, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("cv_folds", [5, 25])  # 25: folds of a row or two, close to leave-one-out
def test_gp_held_out_predictions_match_refitting_without_the_fold(cv_folds):
    x = RNG.uniform(-1, 1, (25, 2))
    y = smooth(x)
    gp = GaussianProcessCommittee(noise=False, cv_folds=cv_folds).fit(x, y, key=KEY)
    held_out = gp.held_out_predictions()
    fitted, lo, scale = gp.fitted[:3]
    from sklearn.gaussian_process import GaussianProcessRegressor

    from alframe.learners._shared import row_folds

    z = (x - lo) / scale
    folds = row_folds(z, cv_folds)
    assert len(np.unique(folds)) > 1
    # normalize_y=False on outputs pre-normalised as the full GP did, so only the fold is left out
    y_mean, y_scale = gp.output_scaling()
    y_norm = (y - y_mean) / y_scale
    for f in np.unique(folds)[:3]:
        out = folds == f
        alone = GaussianProcessRegressor(fitted.kernel_, normalize_y=False, optimizer=None).fit(z[~out], y_norm[~out])
        pred = alone.predict(z[out]).reshape(-1, 1) * y_scale + y_mean
        np.testing.assert_allclose(held_out[out], pred, rtol=1e-4, atol=1e-6)


def test_gp_jackknife_members_disagree_more_at_a_jump_than_on_a_plateau():
    x = RNG.uniform(-1, 1, (150, 2))
    gp = GaussianProcessCommittee().fit(x, step(x), key=KEY)
    line = np.linspace(-0.8, 0.8, 101)
    on_jump = np.column_stack([line, 0.2 - line])          # x0 + x1 = 0.2
    part = np.linspace(0.3, 0.9, 51)
    on_plateau = np.concatenate([np.column_stack([part, np.full(51, 0.7)]),     # 3, far from the jump
                                 np.column_stack([-part, np.full(51, -0.7)])])  # 0, far from the jump
    fitted, lo, scale = gp.fitted[:3]

    def beyond_the_gp_variance(points):
        members = np.asarray(gp.predict_members(points), dtype=np.float64)
        _, std = fitted.predict((points - lo) / scale, return_std=True)  # of an observation: noise included
        latent = std**2 - fitted.kernel_.k2.noise_level * fitted._y_train_std**2
        return float(np.mean(members.var(axis=0)[:, 0] - latent * gp.fitted.y_unit[0] ** 2))

    assert beyond_the_gp_variance(on_jump) > 10 * beyond_the_gp_variance(on_plateau) > 0


def test_gp_restarts_length_scales_stuck_at_their_bound():
    from alframe.learners.gp import REVIVED_LENGTH, _revived

    template = GaussianProcessCommittee()._kernel(3)
    bounds = template.bounds
    theta = np.array([0.0, np.log(0.5), bounds[2, 1], np.log(2.0), np.log(1e-3)])
    start = _revived(theta, bounds, 3, noise=True)
    np.testing.assert_allclose(np.exp(start), [1.0, 0.5, REVIVED_LENGTH, 2.0, 1e-6])
    assert _revived(np.array([0.0, 0.0, 0.0, 0.0, np.log(1e-3)]), bounds, 3, noise=True) is None
    assert theta[2] == bounds[2, 1]  # the optimum itself is left as it was


def test_gp_finds_the_weak_inputs_of_the_wing_weight_model():
    # From these 80 runs, every start of the likelihood search sends four lengths to their bound
    # and calls the inputs' weak effects noise (test mse 2.6); restarting them finds 0.54.
    from simulators.testfunctions import make_wing_weight

    oracle = make_wing_weight()
    x, test = oracle.space.draw(80, seed=4), oracle.space.draw(1000, seed=99)
    y, y_test = oracle.run(x).y, oracle.run(test).y
    gp = GaussianProcessCommittee().fit(x, y, key=KEY)
    assert np.mean((np.asarray(gp.predict_members(test)).mean(axis=0) - y_test) ** 2) < 1.0


def test_gp_keeps_the_likeliest_smoothness_the_smoothest_for_a_smooth_function_not_for_a_kink():
    from alframe.learners.gp import _smoothness_of

    def kink(x):
        return np.abs(x[:, :1] - 0.1) + 0.5 * x[:, 1:2]

    def test_mse(gp, fn):
        x = np.random.default_rng(1).uniform(-1, 1, (500, 2))
        return np.mean((np.asarray(gp.predict_members(x)).mean(axis=0) - fn(x)) ** 2)

    x = np.random.default_rng(2).uniform(-1, 1, (30, 2))
    choices = (1.5, 2.5, np.inf)
    chosen = GaussianProcessCommittee(nu=choices).fit(x, smooth(x), key=KEY)
    assert GaussianProcessCommittee().nu == 2.5
    assert _smoothness_of(chosen.fitted.gp.kernel_) == np.inf
    matern52 = GaussianProcessCommittee(nu=2.5).fit(x, smooth(x), key=KEY)
    assert _smoothness_of(matern52.fitted.gp.kernel_) == 2.5
    assert test_mse(chosen, smooth) < test_mse(matern52, smooth) / 10  # about 130x lower
    assert _smoothness_of(GaussianProcessCommittee(nu=choices).fit(x, kink(x), key=KEY).fitted.gp.kernel_) < np.inf
    # a retune keeps a choice's kernel family consistent with its hyperparameters
    more = np.random.default_rng(3).uniform(-1, 1, (40, 2))
    refit = chosen.fit(np.vstack([x, more]), smooth(np.vstack([x, more])), key=KEY)
    assert refit.fitted.n_at_tune == 70 and _smoothness_of(refit.fitted.gp.kernel_) == np.inf
    assert GaussianProcessCommittee(nu=[2.5]).nu == 2.5
    assert GaussianProcessCommittee(nu=["1.5", ".inf"]).nu == (1.5, np.inf)  # from a command line or YAML
    families = AutoCommittee(gp_smoothness=list(choices)).candidates()
    assert families["gp"].nu == choices and families["gp_log"].committee.nu == choices
    with pytest.raises(ValueError, match="nu must be one or more of"):
        GaussianProcessCommittee(nu=(2.5, 3.0))


def test_gp_bad_settings_and_data_raise():
    with pytest.raises(ValueError, match="folds"):
        GaussianProcessCommittee(folds=1)
    with pytest.raises(ValueError, match="non-finite"):
        GaussianProcessCommittee().fit(np.zeros((4, 2)), np.array([1.0, np.nan, 0, 0]), key=KEY)
    with pytest.raises(RuntimeError, match="never fitted"):
        GaussianProcessCommittee().predict_members(np.zeros((1, 2)))


@pytest.mark.slow
def test_mlp_early_stopping_holds_out_one_fold_per_member_and_stops():
    x = RNG.uniform(-1, 1, (200, 2))
    mlp = MLPCommittee(members=4, hidden=(32, 32), early_stopping=True, steps_first=4000, steps_first_min=4000,
                       patience=3, capacity=256)
    fitted = mlp.fit(x, smooth(x), key=KEY)
    held_out = fitted.held_out_predictions()
    assert held_out.shape == (200, 1)
    assert held_out_error(held_out, smooth(x), task="regression") < 0.2
    assert r2(fitted, smooth) > 0.9
    assert np.all(fitted.state.steps_run <= 4000) and np.any(fitted.state.steps_run < 4000)


def test_mlp_without_early_stopping_runs_every_step_and_has_no_held_out_rows():
    x = RNG.uniform(-1, 1, (40, 2))
    fitted = MLPCommittee(members=2, hidden=(8,), steps_first=120, steps_per_sample=None, capacity=64).fit(
        x, smooth(x), key=KEY)
    assert list(fitted.state.steps_run) == [120, 120]
    with pytest.raises(RuntimeError, match="early_stopping"):
        fitted.held_out_predictions()


def test_mlp_log_transform_predicts_in_the_simulator_units():
    x = RNG.uniform(-1, 1, (120, 2))
    y = np.exp(4 * x[:, :1])  # spans four decades
    fitted = MLPCommittee(members=2, hidden=(32, 32), output_transform="log", steps_first=1500,
                          steps_per_sample=None, capacity=128).fit(x, y, key=KEY)
    pred = np.asarray(fitted.predict_members(x)).mean(axis=0)
    assert np.all(pred > 0)
    assert np.median(np.abs(pred / y - 1)) < 0.1
    with pytest.raises(ValueError, match="positive outputs"):
        MLPCommittee(output_transform="log").fit(x, -y, key=KEY)


@pytest.mark.parametrize("kwargs, match", [
    (dict(early_stopping=True, members=1), "members >= 2"),
    (dict(loss="l1"), "loss"),
    (dict(output_transform="sqrt"), "output_transform"),
    (dict(output_clip=(1.0, 0.0)), "low < high"),
    (dict(patience=0), "patience"),
])
def test_mlp_bad_new_settings_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MLPCommittee(**kwargs)


def test_forest_out_of_bag_predictions_for_regression_and_classification():
    x = RNG.uniform(-1, 1, (120, 2))
    reg = EnsembleCommittee(ExtraTreesRegressor(n_estimators=30, bootstrap=True, oob_score=True),
                            task="regression", n_classes=None).fit(x, smooth(x), key=KEY)
    assert reg.held_out_predictions().shape == (120, 1)
    labels = (x[:, 0] > 0).astype(int)
    clf = EnsembleCommittee(ExtraTreesClassifier(n_estimators=30, bootstrap=True, oob_score=True),
                            n_classes=3).fit(x, labels, key=KEY)
    probs = clf.held_out_predictions()
    assert probs.shape == (120, 3) and np.allclose(probs[:, 2], 0)
    plain = EnsembleCommittee(ExtraTreesRegressor(n_estimators=5), task="regression", n_classes=None)
    with pytest.raises(RuntimeError, match="oob_score"):
        plain.fit(x, smooth(x), key=KEY).held_out_predictions()


def small_families(task="regression", n_classes=None):
    trees = dict(n_estimators=40, bootstrap=True, oob_score=True)
    forest = (EnsembleCommittee(ExtraTreesRegressor(**trees), task="regression", n_classes=None)
              if task == "regression" else
              EnsembleCommittee(ExtraTreesClassifier(**trees), task="classification", n_classes=n_classes))
    families = {"extra_trees": forest,
                "mlp": MLPCommittee(members=4, hidden=(16, 16), task=task, n_classes=n_classes, early_stopping=True,
                                    steps_first=600, steps_per_sample=None, steps_warm=50, capacity=256)}
    if task == "regression":
        families["gp"] = GaussianProcessCommittee(folds=2)
    return families


def test_auto_chooses_the_gp_on_a_smooth_function_and_trees_on_a_step():
    x = RNG.uniform(-1, 1, (120, 2))
    auto = AutoCommittee(families=small_families())
    on_smooth = auto.fit(x, smooth(x), key=KEY)
    assert on_smooth.report()["learner"] == "gp"
    assert r2(on_smooth, smooth) > 0.99
    on_step = auto.fit(x, step(x) + 0.01 * x[:, :1], key=KEY)
    report = on_step.report()
    assert report["learner"] != "gp" or report["cv_error_gp"] <= min(report["cv_error_extra_trees"],
                                                                   report["cv_error_mlp"])
    assert set(report) == {"learner", "cv_error_extra_trees", "cv_error_gp", "cv_error_mlp", "noise_fraction"}


def test_the_gaussian_process_reports_how_much_of_the_variance_it_calls_noise():
    x = RNG.uniform(-1, 1, (100, 2))
    exact = GaussianProcessCommittee().fit(x, smooth(x), key=KEY).report()["noise_fraction"]
    noisy_y = smooth(x) + 0.3 * np.random.default_rng(5).normal(size=smooth(x).shape)
    noisy = GaussianProcessCommittee().fit(x, noisy_y, key=KEY).report()["noise_fraction"]
    assert exact < 1e-4 and 0.3 * 0.09 / noisy_y.var() < noisy < 3 * 0.09 / noisy_y.var()
    chosen = AutoCommittee(families=small_families()).fit(x, noisy_y, key=KEY).report()
    assert chosen["noise_fraction"] == pytest.approx(noisy, rel=0.5)  # the GP family's, whichever is chosen


def test_gp_members_spread_by_the_doubt_about_the_answer_not_by_the_noise():
    x = RNG.uniform(-1, 1, (200, 2))
    noisy_y = smooth(x) + 0.3 * np.random.default_rng(6).normal(size=smooth(x).shape)
    gp = GaussianProcessCommittee().fit(x, noisy_y, key=KEY)
    members = np.asarray(gp.predict_members(x[:50]), dtype=np.float64)
    assert members.var(axis=0).mean() < 0.25 * 0.09  # a noisy observation would spread by 0.09
    assert gp.noise_variance() == pytest.approx([0.09], rel=0.4)


def test_the_observation_noise_reaches_the_strategy_in_the_simulators_units():
    box = Box(names=("a", "b"), lower=(-1.0, 1.0), upper=(1.0, 100.0), log=("b",))
    x = box.draw(200, seed=1)
    z = box.to_unit(x) * 2 - 1
    noisy_y = (smooth(z) + 0.3 * np.random.default_rng(6).normal(size=smooth(z).shape)) * 1e35
    wrapped = in_space_coordinates(in_float32_range(AutoCommittee(families={"gp": GaussianProcessCommittee()})), box)
    fitted = wrapped.fit(x, noisy_y, key=KEY)
    assert observation_noise(fitted) == pytest.approx([0.09e70], rel=0.4)  # past float32's range: a unit of 1e35
    assert noise_in_deviation_units(fitted) == pytest.approx(0.09e70, rel=0.4)
    two = fitted.fit(x, np.column_stack([noisy_y, noisy_y * 1e-40]), key=KEY)
    spread = output_spread(two)
    assert noise_in_deviation_units(two) == pytest.approx(np.mean(observation_noise(two) / spread**2))
    assert noise_in_deviation_units(two) == pytest.approx(0.09 / (noisy_y / 1e35).var(), rel=0.4)
    trees = EnsembleCommittee(ExtraTreesRegressor(n_estimators=10, bootstrap=True, oob_score=True), task="regression",
                              n_classes=None)
    assert observation_noise(trees.fit(x, noisy_y, key=KEY)) is None


def test_auto_chooses_again_only_after_the_data_grow():
    x = RNG.uniform(-1, 1, (150, 2))
    y = smooth(x)
    auto = AutoCommittee(families=small_families(), growth=1.5, background=False)
    first = auto.fit(x[:60], y[:60], key=KEY)
    again = first.fit(x[:80], y[:80], key=jax.random.key(1))
    assert not again.state.chosen_now and again.state.n_at_choice == 60
    assert again.state.name == first.state.name
    later = again.fit(x[:90], y[:90], key=jax.random.key(2))
    assert later.state.chosen_now and later.state.n_at_choice == 90


def test_a_background_choice_takes_effect_at_the_next_fit_with_the_same_outcome():
    x = RNG.uniform(-1, 1, (150, 2))
    y = smooth(x)
    families = small_families()
    first = AutoCommittee(families=families, growth=1.5).fit(x[:60], y[:60], key=KEY)
    assert first.state.chosen_now and first.state.pending is None  # the first choice is made at once
    started = first.fit(x[:90], y[:90], key=jax.random.key(2))
    # The chosen family refitted on the 90 runs answers; every family's fit on them waits to be
    # started (the loop starts it once the strategy has chosen) and then runs in a thread.
    assert not started.state.chosen_now and started.state.pending.future is None
    assert started.state.name == first.state.name and started.state.n_at_choice == 90
    started.start_deferred()
    future = started.state.pending.future
    started.start_deferred()
    assert future is not None and started.state.pending.future is future  # started once
    taken = started.fit(x[:100], y[:100], key=jax.random.key(3))
    assert taken.state.chosen_now and taken.state.pending is None and taken.state.n_at_choice == 90
    # The same choice as one made within the fit on those 90 runs with that key...
    at_once = AutoCommittee(families=families, growth=1.5, background=False)._chosen(
        first._fit_families(x[:90], y[:90], jax.random.key(2)), 90)
    assert taken.report() == at_once.report()
    # ...and, after a restore or never started (the next fit makes the fits), the same fit.
    import pickle

    restored = pickle.loads(pickle.dumps(started))
    assert restored.state.pending.future is None
    never_started = first.fit(x[:90], y[:90], key=jax.random.key(2))
    for other in (restored, never_started):
        again = other.fit(x[:100], y[:100], key=jax.random.key(3))
        assert again.report() == taken.report()
        np.testing.assert_array_equal(np.asarray(again.predict_members(x)), np.asarray(taken.predict_members(x)))


def test_a_choice_on_many_runs_takes_effect_after_its_delay_with_the_same_outcome():
    import pickle

    x = RNG.uniform(-1, 1, (150, 2))
    y = smooth(x)
    families = small_families()
    first = AutoCommittee(families=families, growth=1.5, delay=3, delay_from=80).fit(x[:60], y[:60], key=KEY)
    started = first.fit(x[:90], y[:90], key=jax.random.key(2))  # 90 > delay_from: three fits later
    assert started.state.pending.fits_left == 3
    started.start_deferred()
    restored = pickle.loads(pickle.dumps(started))
    between = started.fit(x[:100], y[:100], key=jax.random.key(3))
    assert not between.state.chosen_now and between.state.pending.fits_left == 2
    assert between.state.pending.future is started.state.pending.future  # the same fits, still under way
    assert between.state.name == first.state.name  # the family in use, refitted on the 100 runs
    between = between.fit(x[:110], y[:110], key=jax.random.key(4))
    taken = between.fit(x[:120], y[:120], key=jax.random.key(5))
    assert taken.state.chosen_now and taken.state.pending is None and taken.state.n_at_choice == 90
    at_once = AutoCommittee(families=families, background=False)._chosen(
        first._fit_families(x[:90], y[:90], jax.random.key(2)), 90)
    assert taken.report() == at_once.report()
    # Never started (a restored run): the fit that takes it makes the fits, with the same outcome.
    again = restored
    for n, k in ((100, 3), (110, 4), (120, 5)):
        again = again.fit(x[:n], y[:n], key=jax.random.key(k))
    assert again.report() == taken.report()
    np.testing.assert_array_equal(np.asarray(again.predict_members(x)), np.asarray(taken.predict_members(x)))
    # On no more than delay_from runs: at the next fit.
    assert AutoCommittee(families=families, growth=1.5, delay=3, delay_from=90).fit(x[:60], y[:60], key=KEY).fit(
        x[:90], y[:90], key=KEY).state.pending.fits_left == 1


def test_auto_is_deterministic_for_a_key_and_leaves_the_receiver_unchanged():
    x = RNG.uniform(-1, 1, (50, 2))
    auto = AutoCommittee(families=small_families())
    a = auto.fit(x, smooth(x), key=KEY)
    b = auto.fit(x, smooth(x), key=KEY)
    assert auto.state is None
    np.testing.assert_array_equal(np.asarray(a.predict_members(x)), np.asarray(b.predict_members(x)))


def test_auto_classification_chooses_among_classifiers():
    x = RNG.uniform(-1, 1, (80, 2))
    labels = (x[:, 0] * x[:, 1] > 0).astype(int)
    auto = AutoCommittee(task="classification", n_classes=2, families=small_families("classification", 2))
    fitted = auto.fit(x, labels, key=KEY)
    assert fitted.report()["learner"] in ("extra_trees", "mlp")
    assert np.asarray(fitted.predict_members(x)).shape[-1] == 2


def test_auto_with_too_few_rows_to_hold_out_still_fits():
    x = RNG.uniform(-1, 1, (5, 2))
    fitted = AutoCommittee(families={"mlp": small_families()["mlp"]}).fit(x, smooth(x), key=KEY)
    assert fitted.report()["learner"] == "mlp"
    assert np.isnan(fitted.report()["cv_error_mlp"])


def test_auto_default_families_cover_both_tasks():
    assert set(AutoCommittee(capacity=64).candidates()) == {"gp", "gp_log", "mlp", "extra_trees"}
    assert set(AutoCommittee(task="classification", n_classes=3, capacity=64).candidates()) == {"mlp", "extra_trees"}


@pytest.mark.parametrize("kwargs, match", [
    (dict(task="ranking"), "task"),
    (dict(task="classification"), "n_classes"),
    (dict(growth=1.0), "growth"),
    (dict(families={}), "at least one"),
])
def test_auto_bad_settings_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AutoCommittee(**kwargs)


def test_auto_pickles_after_fitting():
    import pickle

    x = RNG.uniform(-1, 1, (40, 2))
    fitted = AutoCommittee(families=small_families()).fit(x, smooth(x), key=KEY)
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_allclose(np.asarray(again.predict_members(x)), np.asarray(fitted.predict_members(x)))
    assert dataclasses.replace(again).report() == fitted.report()


def test_gp_refits_condition_on_new_runs_and_retune_only_after_growth():
    x = RNG.uniform(-1, 1, (80, 2))
    y = smooth(x)
    gp = GaussianProcessCommittee(retune_growth=1.5, background_retune=False).fit(x[:40], y[:40], key=KEY)
    kernel = gp.fitted[0].kernel_
    conditioned = gp.fit(x[:50], y[:50], key=KEY)
    assert conditioned.fitted[0].kernel_ == kernel and conditioned.fitted[4] == 40
    assert len(conditioned.fitted[0].X_train_) == 50
    retuned = conditioned.fit(x[:60], y[:60], key=KEY)
    assert retuned.fitted[4] == 60


def test_gp_background_retune_lags_one_fit_and_does_not_depend_on_the_thread():
    import pickle

    x = RNG.uniform(-1, 1, (80, 2))
    y = smooth(x)
    first = {flag: GaussianProcessCommittee(retune_growth=1.2, max_fit_points=30, background_retune=flag).fit(
        x[:40], y[:40], key=KEY) for flag in (True, False)}
    assert first[True].fitted[0].kernel_ == first[False].fitted[0].kernel_  # the first tune is made in the fit
    due = {flag: gp.fit(x[:60], y[:60], key=KEY) for flag, gp in first.items()}
    assert due[True].fitted[0].kernel_ == first[True].fitted[0].kernel_  # conditioned with the last kernel ...
    assert due[True].fitted.retune is not None and due[True].fitted[4] == 40  # ... its retune left pending
    assert due[False].fitted.retune is None and due[False].fitted[4] == 60
    restored = pickle.loads(pickle.dumps(due[True]))  # never started: searched at the next fit
    due[True].start_deferred()
    assert due[True].fitted.retune.future is not None and restored.fitted.retune.future is None
    threaded, unthreaded = (gp.fit(x[:70], y[:70], key=KEY) for gp in (due[True], restored))
    for gp in (threaded, unthreaded):
        assert gp.fitted[0].kernel_ == threaded.fitted[0].kernel_ and gp.fitted[4] == 60
        assert gp.fitted.retune is None  # 70 < 1.2 x 60: not due again
    np.testing.assert_allclose(threaded.fitted[0].kernel_.theta, due[False].fitted[0].kernel_.theta)  # one fit late
    np.testing.assert_array_equal(np.asarray(threaded.predict_members(x)), np.asarray(unthreaded.predict_members(x)))
    # Runs no more than max_fit_points: the search is cheap and made within the fit.
    small = GaussianProcessCommittee(retune_growth=1.2, max_fit_points=60).fit(x[:40], y[:40], key=KEY)
    small = small.fit(x[:60], y[:60], key=KEY)
    assert small.fitted.retune is None and small.fitted[4] == 60


def test_gp_retune_on_many_runs_is_used_after_its_delay():
    x = RNG.uniform(-1, 1, (90, 2))
    y = smooth(x)
    gp = GaussianProcessCommittee(retune_growth=1.2, max_fit_points=30, retune_delay=3, retune_delay_from=50)
    first = gp.fit(x[:40], y[:40], key=KEY)
    due = first.fit(x[:60], y[:60], key=KEY)  # 60 > retune_delay_from: used three fits later
    assert due.fitted.retune.fits_left == 3 and due.fitted[4] == 40
    due.start_deferred()
    kept = due.fit(x[:62], y[:62], key=KEY).fit(x[:66], y[:66], key=KEY)
    assert kept.fitted[0].kernel_ == first.fitted[0].kernel_  # the last kernel in between ...
    assert kept.fitted.retune.fits_left == 1 and kept.fitted[4] == 40  # ... and no second retune started
    used = kept.fit(x[:70], y[:70], key=KEY)
    assert used.fitted.retune is None and used.fitted[4] == 60  # 70 < 1.2 x 60: not due again
    searched_now = GaussianProcessCommittee(retune_growth=1.2, max_fit_points=30, background_retune=False).fit(
        x[:40], y[:40], key=KEY).fit(x[:60], y[:60], key=KEY)
    np.testing.assert_allclose(used.fitted[0].kernel_.theta, searched_now.fitted[0].kernel_.theta)
    with pytest.raises(ValueError, match="retune_delay"):
        GaussianProcessCommittee(retune_delay=0)


def test_a_gps_kernel_search_finds_the_same_optimum_in_any_thread():
    from concurrent.futures import ThreadPoolExecutor

    x = RNG.uniform(size=(30, 2))
    y = np.sin(3 * x[:, 0]) + x[:, 1]

    def theta():
        return GaussianProcessCommittee().fit(x, y, key=KEY).fitted[0].kernel_.theta

    here = theta()
    for _ in range(3):  # a new thread each time, after this one has held the BLAS limit
        with ThreadPoolExecutor(max_workers=1) as pool:
            np.testing.assert_array_equal(pool.submit(theta).result(), here)
        np.testing.assert_array_equal(theta(), here)


def test_background_work_that_can_wait_runs_at_a_lower_priority():
    import os

    from alframe.learners.base import BACKGROUND_NICENESS, in_background

    def niceness():
        return os.getpriority(os.PRIO_PROCESS, 0)

    if not hasattr(os, "getpriority"):
        pytest.skip("no per-thread scheduling priority on this platform")
    import threading

    def own():
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    assert in_background(own, name="test").result() == niceness()
    assert in_background(own, name="test", yielding=True).result() == min(niceness() + BACKGROUND_NICENESS, 19)
    assert niceness() == os.getpriority(os.PRIO_PROCESS, threading.get_native_id())  # this thread's unchanged


def test_auto_starts_the_chosen_gps_retune():
    x = RNG.uniform(-1, 1, (80, 2))
    auto = AutoCommittee(families={"gp": GaussianProcessCommittee(retune_growth=1.2, max_fit_points=30)}, growth=10.0)
    auto = auto.fit(x[:40], smooth(x[:40]), key=KEY).fit(x[:60], smooth(x[:60]), key=KEY)
    auto.start_deferred()
    assert auto.state.committee.fitted.retune.future is not None
    log = LogOutputs(GaussianProcessCommittee(retune_growth=1.2, max_fit_points=30)).fit(x[:40], np.exp(smooth(x[:40])), key=KEY)
    log = log.fit(x[:60], np.exp(smooth(x[:60])), key=KEY)
    log.start_deferred()
    assert log.committee.fitted.retune.future is not None


def test_gp_retune_from_the_last_optimum_only_keeps_it_and_from_every_start_can_leave_it():
    from simulators.testfunctions.functions import hartmann6

    rng = np.random.default_rng(0)
    x = rng.random((300, 6))
    y = hartmann6(x)
    # From long length scales alone, Hartmann 6-D's wells are explained as white noise.
    trapped = GaussianProcessCommittee(length_starts=(1.0,), retune_growth=1.1, background_retune=False).fit(x[:200], y[:200], key=KEY)
    assert np.all(np.exp(trapped.fitted[0].kernel_.theta[1:7]) < 0.011)  # every length at its bound
    retuned = {flag: dataclasses.replace(trapped, length_starts=(1.0, 0.3), retune_from_last_only=flag).fit(
        x, y, key=jax.random.key(1)) for flag in (True, False)}
    assert all(gp.fitted[4] == 300 for gp in retuned.values())  # both tuned again
    assert np.all(np.exp(retuned[True].fitted[0].kernel_.theta[1:7]) < 0.011)
    assert np.all(np.exp(retuned[False].fitted[0].kernel_.theta[1:7]) > 0.1)


def power_law(x):
    """Positive, spanning about four decades on [0, 1]^3 (the third input inert): linear in log(y)."""
    return ((0.01 + x[:, :1]) ** -2) * (1 + x[:, 1:2])


def log_families():
    return {**small_families(), "gp_log": LogOutputs(GaussianProcessCommittee(folds=2), min_span=LOG_SPAN)}


def test_log_outputs_learn_a_power_law_in_its_own_units():
    rng = np.random.default_rng(1)  # its own draws, whichever tests ran before
    x = rng.uniform(0, 1, (60, 3))
    y = power_law(x)
    plain = GaussianProcessCommittee(folds=2).fit(x, y, key=KEY)
    logged = LogOutputs(GaussianProcessCommittee(folds=2)).fit(x, y, key=KEY)
    test = rng.uniform(0, 1, (1000, 3))

    def skill(committee):
        pred = np.asarray(committee.predict_members(test)).mean(axis=0)
        return 1 - np.mean((pred - power_law(test)) ** 2) / power_law(test).var()

    assert skill(logged) > 0.9 and skill(plain) < 0  # in the simulator's units, the plain GP is worse than the mean
    members = np.asarray(logged.predict_members(test))
    assert members.shape == (4, 1000, 1) and np.all(members > 0)
    held_out = logged.held_out_predictions()
    assert held_out.shape == (60, 1) and held_out_error(held_out, y, task="regression") < 0.5


def test_log_outputs_refuse_what_a_log_scale_cannot_take():
    x = RNG.uniform(0, 1, (20, 2))
    with pytest.raises(ValueError, match="positive outputs, got -1"):
        LogOutputs(GaussianProcessCommittee()).fit(x, np.r_[-1.0, np.ones(19)], key=KEY)
    with pytest.raises(ValueError, match="span a factor of 2, less than min_span=100"):
        LogOutputs(GaussianProcessCommittee(), min_span=100).fit(x, np.r_[1.0, 2.0, np.full(18, 1.5)], key=KEY)
    with pytest.raises(ValueError, match="min_span"):
        LogOutputs(GaussianProcessCommittee(), min_span=0.5)
    with pytest.raises(RuntimeError, match="never fitted"):
        LogOutputs(GaussianProcessCommittee()).predict_members(x)


@pytest.mark.parametrize("seed", [1, 2])
def test_auto_takes_the_log_scale_for_outputs_spanning_decades_and_not_otherwise(seed):
    x = np.random.default_rng(seed).uniform(0, 1, (60, 3))  # its own draws, whichever tests ran before
    spanning = AutoCommittee(families=log_families()).fit(x, power_law(x), key=KEY).report()
    assert spanning["learner"] == "gp_log" and spanning["cv_error_gp_log"] < spanning["cv_error_gp"]
    narrow = AutoCommittee(families=log_families()).fit(x, 2 + smooth(x), key=KEY).report()
    assert narrow["learner"] != "gp_log" and np.isnan(narrow["cv_error_gp_log"])  # it sat out


def test_auto_chooses_again_when_its_family_cannot_take_new_runs():
    """A log-scale family and a first zero output: the next fit chooses among the others."""
    x = np.random.default_rng(1).uniform(0, 1, (61, 3))  # its own draws, whichever tests ran before
    y = power_law(x)
    first = AutoCommittee(families=log_families(), growth=1.5).fit(x[:60], y[:60], key=KEY)
    assert first.report()["learner"] == "gp_log"
    y[60] = 0.0
    again = first.fit(x, y, key=jax.random.key(1))
    assert again.state.chosen_now and again.report()["learner"] != "gp_log"
    assert np.isnan(again.report()["cv_error_gp_log"])


def test_the_active_learner_starts_deferred_work_unless_told_not_to():
    from alframe.active_learner import ActiveLearner, Runs
    from alframe.oracle import Outcome
    from alframe.space import Box
    from alframe.strategies.reduction import VarianceReduction

    def outcome(x):
        n = len(x)
        return Outcome(smooth(x), np.ones(n, bool), np.full(n, "", dtype=object), np.zeros(n))

    box = Box(names=("a", "b"), lower=(-1, -1), upper=(1, 1))
    x = RNG.uniform(-1, 1, (60, 2))
    learner = ActiveLearner(box, GaussianProcessCommittee(folds=2, retune_growth=1.2, max_fit_points=30), VarianceReduction(),
                            runs=Runs.empty(2, 1), budget=100)
    learner.tell(x[:40], outcome(x[:40]))
    learner.refit()
    learner.tell(x[40:], outcome(x[40:]))
    learner.refit()  # 60 >= 1.2 x 40: a retune falls due and waits
    learner.ask(2, background=False)
    assert learner.committee.fitted.retune.future is None
    learner.ask(2)
    assert learner.committee.fitted.retune.future is not None
