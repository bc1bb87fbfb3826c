"""The closed-form marginal likelihood agrees with scikit-learn's, value, gradient and optimum."""

import numpy as np
import pytest
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

from alframe.learners.marginal_likelihood import maximise, negative_log_marginal_likelihood


def _data(n: int = 60, dim: int = 3, outputs: int = 2):
    rng = np.random.default_rng(0)
    z = rng.random((n, dim))
    y = np.sin(3 * z @ rng.normal(size=(dim, outputs)))
    return rng, z, (y - y.mean(0)) / y.std(0)


@pytest.mark.parametrize("nu", [0.5, 1.5, 2.5, np.inf])
@pytest.mark.parametrize("noise", [True, False])
def test_value_and_gradient_match_scikit_learn(nu, noise):
    rng, z, y = _data()
    kernel = ConstantKernel(1.3) * Matern(rng.uniform(0.3, 2.0, z.shape[1]), nu=nu)
    if noise:
        kernel = kernel + WhiteKernel(1e-3)
    gp = GaussianProcessRegressor(kernel, optimizer=None).fit(z, y)
    expected, expected_gradient = gp.log_marginal_likelihood(kernel.theta, eval_gradient=True)
    value, gradient = negative_log_marginal_likelihood(kernel.theta, z, y, nu, noise)
    assert value == pytest.approx(-expected, rel=1e-6)
    np.testing.assert_allclose(gradient, -expected_gradient, rtol=1e-6, atol=1e-8)


def test_maximum_matches_scikit_learn():
    _, z, y = _data(n=80)
    kernel = ConstantKernel(1.0, (1e-3, 1e3)) * Matern(np.ones(3), (1e-2, 1e2), nu=2.5) + WhiteKernel(1e-4, (1e-8, 0.5))
    gp = GaussianProcessRegressor(kernel).fit(z, y)
    theta, value = maximise(z, y, [kernel.theta], kernel.bounds, nu=2.5, noise=True)
    assert value == pytest.approx(gp.log_marginal_likelihood_value_, abs=1e-3)
    np.testing.assert_allclose(theta, gp.kernel_.theta, atol=1e-2)


def test_a_singular_gram_matrix_is_an_infinite_loss():
    z = np.zeros((5, 2))  # every row the same and a variance that swamps the jitter: rank one
    theta = np.array([np.log(1e300), 0.0, 0.0])
    value, gradient = negative_log_marginal_likelihood(theta, z, np.ones((5, 1)), 2.5, False)
    assert value == np.inf and not gradient.any()


def test_an_unsupported_smoothness_is_refused():
    with pytest.raises(ValueError, match="nu must be one of"):
        negative_log_marginal_likelihood(np.zeros(3), np.ones((4, 2)), np.ones((4, 1)), 0.7, False)
