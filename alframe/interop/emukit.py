"""emukit's experimental design loop, driven one batch at a time.

emukit 0.5.1's own scikit-learn wrapper sets new training data without refactorising, which
breaks batches larger than one; `RefactorisingGP` is a wrapper that refactorises.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from alframe.interop.peer import as_column
from alframe.space import Box


class RefactorisingGP:
    """A scikit-learn `GaussianProcessRegressor` as an emukit model (IModel, IDifferentiable).

    `set_data` refactorises with the current hyperparameters (emukit's greedy batches add
    fantasised points this way); `optimize` refits the hyperparameters, starting from the
    current ones (see `alframe.interop.modal.warm_start_kernel`). The kernel must be
    ConstantKernel x RBF (the gradients below are for it).

    Args:
        template: an unfitted GaussianProcessRegressor with that kernel.
        x, y: initial data, (n, dim) and (n, 1).
    """

    def __init__(self, template: Any, x: np.ndarray, y: np.ndarray):
        from sklearn.base import clone
        from sklearn.gaussian_process.kernels import RBF, ConstantKernel, Product

        kernel = template.kernel
        if not (isinstance(kernel, Product) and isinstance(kernel.k1, ConstantKernel) and isinstance(kernel.k2, RBF)):
            raise TypeError(f"RefactorisingGP needs a ConstantKernel * RBF kernel, got {kernel}")
        self._template = template
        self._x, self._y = np.asarray(x, np.float64), as_column(y)
        self._gp = clone(template).fit(self._x, self._y)

    @property
    def X(self) -> np.ndarray:
        return self._x

    @property
    def Y(self) -> np.ndarray:
        return self._y

    def set_data(self, X: np.ndarray, Y: np.ndarray) -> None:
        from sklearn.base import clone

        self._x, self._y = np.asarray(X, np.float64), as_column(Y)
        self._gp = clone(self._template).set_params(kernel=self._gp.kernel_, optimizer=None).fit(self._x, self._y)

    def optimize(self) -> None:
        from sklearn.base import clone

        self._gp = clone(self._template).set_params(kernel=self._gp.kernel_).fit(self._x, self._y)

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance at X (n, dim), each (n, 1)."""
        mean, std = self._gp.predict(np.asarray(X, np.float64), return_std=True)
        return mean.reshape(-1, 1), (std**2).reshape(-1, 1)

    def get_prediction_gradients(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Gradients of the mean and the variance at X (n, dim), each (n, dim)."""
        from scipy.linalg import cho_solve

        gp, X = self._gp, np.asarray(X, np.float64)
        length = np.broadcast_to(np.asarray(gp.kernel_.k2.length_scale, np.float64), (X.shape[1],))
        k = gp.kernel_(X, gp.X_train_)  # (n, N)
        dk = -k[..., None] * (X[:, None, :] - gp.X_train_[None]) / length**2  # (n, N, dim)
        scale = float(np.ravel(gp._y_train_std)[0])
        dmean = np.einsum("nid,i->nd", dk, np.ravel(gp.alpha_)) * scale
        v = cho_solve((gp.L_, True), k.T)  # (N, n)
        dvar = -2.0 * np.einsum("nid,in->nd", dk, v) * scale**2
        return dmean, dvar


class EmukitPeer:
    """emukit's ExperimentalDesignLoop (ModelVariance, gradient optimiser, greedy batches) over
    the box `space`, on the scikit-learn Gaussian process `gp` (unfitted, ConstantKernel x RBF),
    as an `alframe.interop.peer.Peer`."""

    def __init__(self, space: Box, gp: Any, x: np.ndarray, y: np.ndarray, batch_size: int):
        from emukit.core import ContinuousParameter, ParameterSpace
        from emukit.experimental_design import ExperimentalDesignLoop
        from emukit.experimental_design.acquisitions import ModelVariance

        self.model = RefactorisingGP(gp, x, y)
        parameters = [ContinuousParameter(n, lo, hi) for n, lo, hi in zip(space.names, space.lower, space.upper)]
        self.loop = ExperimentalDesignLoop(ParameterSpace(parameters), self.model,
                                           acquisition=ModelVariance(self.model), batch_size=batch_size)
        self.batch_size = batch_size

    def tell(self, x: np.ndarray, y: np.ndarray) -> None:
        from emukit.core.loop import UserFunctionResult

        if len(x):
            self.loop.loop_state.update([UserFunctionResult(xi, yi) for xi, yi in zip(x, as_column(y))])
            for updater in self.loop.model_updaters:
                updater.update(self.loop.loop_state)

    def ask(self, k: int, candidates: np.ndarray) -> np.ndarray:
        calculator = self.loop.candidate_point_calculator
        if hasattr(calculator, "batch_size"):
            calculator.batch_size = k  # the last batch may be smaller
        return calculator.compute_next_points(self.loop.loop_state)[:k]

    def members(self, x: np.ndarray) -> np.ndarray:
        return self.model.predict(x)[0][None]
