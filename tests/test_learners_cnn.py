"""CNNCommittee: shapes, determinism, learning a separable image task, no recompilation, errors.

Every committee here shares one tiny architecture per task (8x8 images, one convolution,
one hidden dense layer) and one capacity, so each task compiles its training program once.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest

from alframe.learners import CNNCommittee, Committee, predict_mean
from alframe.learners.cnn import ImageShapeError
from alframe.learners.ensemble import TRACES

SHAPE = (8, 8)
CAPACITY = 128


def make_cnn(**overrides) -> CNNCommittee:
    settings = dict(image_shape=SHAPE, members=2, conv_features=(4,), dense=(8,), batch_size=16,
                    steps_first=150, steps_first_min=1, steps_warm=20, capacity=CAPACITY,
                    learning_rate=3e-3)
    settings.update(overrides)
    return CNNCommittee(**settings)


def square_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Noise images (n, 64); label 1 adds a bright 4x4 square at a random place."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    images = rng.normal(0.0, 1.0, (n, *SHAPE)).astype(np.float32)
    for i in np.flatnonzero(labels):
        r, c = rng.integers(0, 5, 2)
        images[i, r:r + 4, c:c + 4] += 2.0
    return images.reshape(n, -1), labels


X, LABELS = square_images(100, seed=0)
X_TEST, LABELS_TEST = square_images(100, seed=1)


@pytest.fixture(scope="module")
def classifier():
    return make_cnn().fit(X, LABELS, key=jax.random.key(0))


def test_classifier_learns_a_separable_image_task(classifier):
    assert isinstance(classifier, Committee)
    members = np.asarray(classifier.predict_members(X_TEST))
    assert members.shape == (2, 100, 2)
    np.testing.assert_allclose(members.sum(-1), 1.0, atol=1e-5)
    accuracy = np.mean(predict_mean(classifier, X_TEST).argmax(1) == LABELS_TEST)
    assert accuracy > 0.9


def test_same_key_same_committee_other_key_other_committee(classifier):
    again = make_cnn().fit(X, LABELS, key=jax.random.key(0))
    other = make_cnn().fit(X, LABELS, key=jax.random.key(1))
    np.testing.assert_array_equal(np.asarray(again.predict_members(X_TEST)),
                                  np.asarray(classifier.predict_members(X_TEST)))
    assert not np.allclose(np.asarray(other.predict_members(X_TEST)),
                           np.asarray(classifier.predict_members(X_TEST)))


def test_members_disagree_and_fit_leaves_the_receiver_unfitted(classifier):
    members = np.asarray(classifier.predict_members(X_TEST))
    assert not np.allclose(members[0], members[1])
    assert not make_cnn().is_fitted


def test_growing_data_and_query_sizes_compile_nothing_new(classifier):
    classifier.predict_members(X_TEST[:17])  # the 32-image chunk
    before = dict(TRACES)
    grown = classifier
    for n in (40, 70, 100):  # warm starts and a restart from scratch on a new n each time
        x, y = square_images(n, seed=n)
        grown = grown.fit(x, y, key=jax.random.key(n))
    for n in (17, 25, 32):
        assert np.asarray(grown.predict_members(X_TEST[:n])).shape == (2, n, 2)
    assert dict(TRACES) == before


def test_predictions_in_chunks_equal_one_call(classifier):
    chunked = CNNCommittee(**{**_settings(classifier), "predict_chunk": 32})
    whole = np.asarray(classifier.predict_members(X_TEST))
    np.testing.assert_allclose(np.asarray(chunked.predict_members(X_TEST)), whole, atol=1e-6)


def _settings(committee: CNNCommittee) -> dict:
    return {f.name: getattr(committee, f.name) for f in dataclasses.fields(committee)}


def test_regression_predicts_a_brightness():
    x, _ = square_images(120, seed=3)
    brightness = x.reshape(-1, *SHAPE)[:, 2:6, 2:6].mean(axis=(1, 2)) * 10.0 + 4.0
    committee = make_cnn(task="regression", n_classes=None, steps_first=300)
    fitted = committee.fit(x, brightness, key=jax.random.key(0))
    x_test, _ = square_images(60, seed=4)
    truth = x_test.reshape(-1, *SHAPE)[:, 2:6, 2:6].mean(axis=(1, 2)) * 10.0 + 4.0
    members = np.asarray(fitted.predict_members(x_test))
    assert members.shape == (2, 60, 1)
    assert np.corrcoef(members.mean(0)[:, 0], truth)[0, 1] > 0.8


@pytest.mark.parametrize("shape", [(8,), (0, 8), (8, -1), "8x8"])
def test_bad_image_shape_is_refused(shape):
    with pytest.raises(ImageShapeError, match="image_shape"):
        make_cnn(image_shape=shape)


def test_inputs_that_do_not_fold_into_the_image_shape_are_refused(classifier):
    with pytest.raises(ImageShapeError, match=r"fit: x must be \(n, 64\) rows of 8x8 images.*\(10, 63\)"):
        make_cnn().fit(np.zeros((10, 63)), np.zeros(10, int), key=jax.random.key(0))
    with pytest.raises(ImageShapeError, match=r"predict_members: .*\(5, 8, 8\)"):
        classifier.predict_members(np.zeros((5, 8, 8)))


def test_bad_labels_and_settings_are_refused():
    with pytest.raises(ValueError, match="class labels"):
        make_cnn().fit(X[:4], np.array([0, 1, 2, 0]), key=jax.random.key(0))
    with pytest.raises(ValueError, match="dropout"):
        make_cnn(dropout=1.0)
    with pytest.raises(ValueError, match="predict_chunk"):
        make_cnn(predict_chunk=48)
    with pytest.raises(RuntimeError, match="never fitted"):
        make_cnn().predict_members(X)
