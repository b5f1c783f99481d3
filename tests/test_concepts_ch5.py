"""Chapter 5's curvature section, asserted on the numbers the executed chapter glued: its
Hessian-vector products (dual arrays run through the layers, forward over reverse) agree with
central differences of the gradient away from ReLU kinks; its power iteration finds the largest
eigenvalue of the full Hessian, built here independently with PyTorch; and full-batch training
just below and just above 2/lambda_max at the start neither diverges, while the sharpness rises
past 2/lr and hovers there (the edge of stability)."""
import numpy as np
import pytest

from bplib import data, train, validate
from bplib.layers import Linear, mlp

pytestmark = [pytest.mark.book, pytest.mark.xdist_group("book")]

SIZES = [2, 16, 16, 3]


def spiral():
    return data.spirals(n_per_class=100, n_classes=3, seed=0)


def torch_hessian_eigenvalues(model, X, y):
    """All eigenvalues of the Hessian of the mean cross-entropy of ``model`` (Linear, ReLU,
    ..., Linear) on (X, y), built entry by entry by PyTorch's autograd."""
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    linears = [layer for layer in model if isinstance(layer, Linear)]
    shapes = [p.shape for layer in linears for p in (layer.W, layer.b)]
    sizes = [int(np.prod(s)) for s in shapes]

    def loss(theta):
        pieces = torch.split(theta, sizes)
        h = torch.tensor(X)
        for i in range(len(linears)):
            W, b = pieces[2 * i].reshape(shapes[2 * i]), pieces[2 * i + 1]
            h = h @ W + b
            if i < len(linears) - 1:
                h = torch.relu(h)
        return torch.nn.functional.cross_entropy(h, torch.tensor(y))

    theta = torch.tensor(np.concatenate([p.value.ravel() for layer in linears
                                         for p in (layer.W, layer.b)]))
    return np.linalg.eigvalsh(torch.autograd.functional.hessian(loss, theta).numpy())


class OwnArithmetic(np.ndarray):
    """An ndarray subclass that does its own arithmetic (here: numpy's, on plain views)."""

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        plain = [x.view(np.ndarray) if isinstance(x, OwnArithmetic) else x for x in inputs]
        if "out" in kwargs:
            kwargs["out"] = tuple(o.view(np.ndarray) for o in kwargs["out"])
        return getattr(ufunc, method)(*plain, **kwargs).view(OwnArithmetic)


def test_validation_keeps_a_subclass_with_arithmetic_of_its_own():
    """The dual arrays reach the layers because validation keeps an ndarray subclass that
    defines __array_ufunc__; any other subclass is still read as a plain ndarray."""
    own = np.ones((2, 3)).view(OwnArithmetic)
    assert validate.as_float(own, "X", "test") is own
    assert type(Linear(3, 4, rng=0).forward(own)) is OwnArithmetic
    tagged = np.ones((2, 3)).view(np.recarray)  # a subclass with numpy's own arithmetic
    assert type(validate.as_float(tagged, "X", "test")) is np.ndarray
    plain = np.ones((2, 3))
    assert validate.as_float(plain, "X", "test") is plain


def test_hvp_agrees_with_central_differences_away_from_kinks(ch5):
    assert ch5("n_params") == 2 * 16 + 16 + 16 * 16 + 16 + 16 * 3 + 3
    assert ch5("hv_error_trained") < 1e-6
    # The fresh network's zero biases put the three origin points on every ReLU kink.
    X, _ = spiral()
    assert int(np.sum(np.all(X == 0.0, axis=1))) == 3
    assert 1e-4 < ch5("hv_error_fresh") < 1e-1


def test_power_iteration_finds_the_largest_eigenvalue_of_the_fresh_network(ch5):
    X, y = spiral()
    eigenvalues = torch_hessian_eigenvalues(mlp(SIZES, rng=0), X, y)
    assert abs(eigenvalues[0]) < eigenvalues[-1]  # the largest in size is the top one
    assert ch5("lam_fresh") == pytest.approx(eigenvalues[-1], rel=1e-6)
    assert ch5("lam_fresh_change") < 1e-6
    assert ch5("lr_limit") == pytest.approx(2 / eigenvalues[-1], rel=1e-6)


def test_power_iteration_finds_the_largest_eigenvalue_of_the_trained_network(ch5):
    """The chapter's spiral network, trained again with the chapter's settings (the same
    accuracy shows it is the same network)."""
    X, y = spiral()
    net = mlp(SIZES, rng=0)
    train.fit(net, X, y, lr=0.3, epochs=100, batch_size=30, rng=0)
    assert 100 * train.accuracy(net, X, y) == pytest.approx(ch5("spiral_acc"))
    eigenvalues = torch_hessian_eigenvalues(net, X, y)
    assert abs(eigenvalues[0]) < eigenvalues[-1]
    assert ch5("lam_trained") == pytest.approx(eigenvalues[-1], rel=1e-6)
    assert ch5("lam_trained_change") < 1e-6
    # "training made the loss ... times sharper"
    assert ch5("lam_growth") == pytest.approx(ch5("lam_trained") / ch5("lam_fresh"))
    assert ch5("lam_growth") > 1.5


@pytest.mark.parametrize("run, factor", [("below", 0.9), ("above", 1.1)])
def test_both_sides_of_the_limit_train_without_diverging(ch5, run, factor):
    assert ch5(f"eos_{run}_lr") == pytest.approx(factor * 2 / ch5("lam_fresh"), rel=1e-6)
    assert ch5(f"eos_{run}_diverged") is False
    assert ch5(f"eos_{run}_loss") < 0.25 * ch5("eos_first_loss")  # "far below"


@pytest.mark.parametrize("run", ["below", "above"])
def test_the_sharpness_hovers_at_and_above_2_over_lr(ch5, run):
    """Edge of stability: mostly above the limit, up to well above it, back below it now and
    then, and a loss that rises in many steps."""
    assert ch5(f"eos_{run}_above") > 10            # "mostly above": more than half of 20
    assert ch5(f"eos_{run}_max") > 1.5
    assert ch5(f"eos_{run}_below_again") >= 2      # "now and then"
    assert ch5(f"eos_{run}_rises") > 10


def test_the_run_below_the_limit_sharpens_past_it(ch5):
    """Progressive sharpening: lambda_max starts below 2/lr (by construction, at 0.9) and has
    passed it within the first few measurements."""
    assert 0 < ch5("eos_below_first_above") <= 20


def test_the_run_above_the_limit_ends_lower_still(ch5):
    assert ch5("eos_above_loss") < ch5("eos_below_loss")


def test_on_the_line_the_same_excess_diverged(ch5):
    assert 1.0 < ch5("line_factor") < 1.2
    assert ch5("lr_diverging_diverged") is True
