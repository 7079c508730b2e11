"""bootstrap= and subsample=: each network trains on its own rows; the
Run gives them back (counts), its out-of-bag losses are the losses of
the network's outputs on the rows it never drew, and predict(oob=True)
is the out-of-bag ensemble (scikit-learn's oob_decision_function_)."""

import numpy as np
import pytest

import gputrain


def moons_run(**kwargs):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 2))
    y = (x[:, :1] * x[:, 1:] > 0).astype(float)
    run = gputrain.train(
        data=(x, y), layers=[2, 4, 1], activation="tanh", loss="cross-entropy",
        reduction="mean", optimizer="adam", lr=0.05, networks=5, epochs=40,
        backend="cpu", progress=False, **kwargs,
    )
    return run, x, y


def cross_entropy(p, y):
    return float(np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p))))


@pytest.mark.parametrize("kwargs", [dict(bootstrap=True), dict(subsample=0.6)])
def test_oob_losses_are_the_losses_on_the_rows_never_drawn(kwargs):
    run, x, y = moons_run(data_seed=7, **kwargs)
    counts = run.counts
    assert counts.shape == (5, 40) and counts.dtype == np.uint8
    drawn = counts.sum(axis=1)
    assert np.all(drawn == (40 if "bootstrap" in kwargs else 24))
    # Every network its own rows.
    assert len({c.tobytes() for c in counts}) == 5
    outputs = run.predict(x, backend="cpu")
    for n in range(5):
        unseen = counts[n] == 0
        expected = cross_entropy(outputs[n, unseen, 0], y[unseen, 0])
        # The float64 reference's loss against NumPy's over the same
        # outputs: measured worst relative difference 1.8e-16; bound 2e-15.
        assert run.results["oob_loss"][n] == pytest.approx(expected, rel=2e-15), n
        accuracy = np.mean((outputs[n, unseen, 0] >= 0.5) == (y[unseen, 0] >= 0.5))
        assert run.results["oob_accuracy"][n] == accuracy


def test_predict_oob_combines_each_row_over_its_out_of_bag_networks():
    run, x, _ = moons_run(bootstrap=True, data_seed=2)
    combined, spread = run.predict(x, backend="cpu", ensemble="mean", oob=True)
    outputs = run.predict(x, backend="cpu")[:, :, 0]
    out_of_bag = run.counts == 0
    for s in range(40):
        left_out = outputs[out_of_bag[:, s], s]
        if left_out.size == 0:
            assert np.isnan(combined[s, 0])
        else:
            assert combined[s, 0] == pytest.approx(left_out.mean(), rel=1e-15)
            assert spread[s, 0] == pytest.approx(left_out.std(), abs=1e-15)
    with pytest.raises(ValueError, match="give ensemble="):
        run.predict(x, oob=True)
    with pytest.raises(ValueError, match="X has 3 rows"):
        run.predict(x[:3], ensemble="mean", oob=True)
    plain, _, _ = moons_run()
    assert plain.counts is None
    with pytest.raises(ValueError, match="every network on every row"):
        plain.predict(x, ensemble="mean", oob=True)
