"""The pruning rules of wanda and sparsegpt on one linear layer (edgesdk.techniques.oneshot), in numpy."""

import numpy as np
import pytest

from edgesdk.techniques import oneshot


@pytest.fixture(scope="module")
def layer():
    """A 32-output, 64-input layer whose inputs are correlated and of very different scales, as real
    activations are: exactly where |W| alone ranks weights badly."""
    rng = np.random.default_rng(0)
    mix = rng.standard_normal((64, 64)) * 0.3 + np.eye(64)
    x = (rng.standard_normal((2000, 64)) @ mix) * np.exp(rng.uniform(-1.5, 1.5, 64))
    w = rng.standard_normal((32, 64))
    return w, x


def _magnitude(w, value):
    keep = oneshot._mask(np.abs(w), value) if isinstance(value, tuple) else ~oneshot.lowest(np.abs(w), value)
    return w * keep


def _error(x, w, pruned):
    return float(np.linalg.norm(x @ (w - pruned).T) / np.linalg.norm(x @ w.T))


@pytest.mark.parametrize("value", [0.5, 0.75, (2, 4)])
def test_both_methods_prune_exactly_and_keep_outputs_closer_than_magnitude(layer, value):
    w, x = layer
    results = {"magnitude": _magnitude(w, value)}
    for method in oneshot.METHODS:
        results[method] = oneshot.prune_matrix(w, x, method, value, "dense")
    for name, pruned in results.items():
        expected = 1 - value[0] / value[1] if isinstance(value, tuple) else value
        assert abs((pruned == 0).mean() - expected) < 1e-3, name  # a fraction: of the whole layer
        if isinstance(value, tuple):
            blocks = pruned.reshape(32, -1, value[1])
            assert ((blocks == 0).sum(axis=2) == value[1] - value[0]).all(), name
    errors = {name: _error(x, w, pruned) for name, pruned in results.items()}
    assert errors["sparsegpt"] < errors["wanda"] < errors["magnitude"], errors
    assert errors["sparsegpt"] < 0.8 * errors["magnitude"], errors


def test_wanda_keeps_every_kept_weight_and_sparsegpt_updates_them(layer):
    w, x = layer
    wanda = oneshot.prune_matrix(w, x, "wanda", 0.5, "dense")
    kept = wanda != 0
    assert np.array_equal(wanda[kept], w[kept])
    second = oneshot.prune_matrix(w, x, "sparsegpt", 0.5, "dense")
    assert not np.allclose(second[second != 0], w[second != 0])  # the compensation moved the kept weights


def test_inputs_that_are_always_zero_have_their_weights_removed(layer):
    w, x = layer
    x = x.copy()
    x[:, :8] = 0.0  # e.g. channels a ReLU never opens on this data
    pruned = oneshot.prune_matrix(w, x, "sparsegpt", 0.25, "dense")
    assert (pruned[:, :8] == 0).all() and np.isfinite(pruned).all()


def test_n_m_needs_inputs_in_whole_blocks(layer):
    from edgesdk.errors import RecipeError

    w, x = layer
    with pytest.raises(RecipeError, match="not a multiple of 3"):
        oneshot.prune_matrix(w, x, "sparsegpt", (1, 3), "dense")
