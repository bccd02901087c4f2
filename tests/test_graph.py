"""The six equations: forward loss and hand-written gradients, checked against torch autograd."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnlab import graph
from nnlab.gradcheck import (
    FINITE_DIFFERENCES,
    TORCH,
    CaseResult,
    Errors,
    all_graphs,
    compare,
    relative_error,
    torch_loss_and_gradients,
    worst_failure,
)
from nnlab.graph import Weights
from nnlab.params import GradcheckParams, GraphParams

TOLERANCE = 1e-10
EXAMPLES = 15
MAX_Y = 6.0


def graph_name(params: GraphParams) -> str:
    return f"{params.combine}-{params.loss}-{params.activation}"


GRAPHS = pytest.mark.parametrize("params", all_graphs(), ids=graph_name)


@st.composite
def problems(draw: st.DrawFn) -> tuple[Weights, np.ndarray]:
    """Random A, B, C and inputs x of random sizes and scales, with |y| = |A x| <= MAX_Y.

    Deep in saturation the slope of tanh or sigmoid (1 - u^2, u (1 - u)) keeps only a few
    significant digits in any float64 implementation; A is shrunk to stay out of it.
    """
    dim = draw(st.integers(min_value=1, max_value=6))
    samples = draw(st.integers(min_value=1, max_value=5))
    seed = draw(st.integers(min_value=0, max_value=2**32 - 1))
    scale = draw(st.sampled_from([0.1, 1.0, 3.0]))

    weights, x = graph.random_problem(dim, samples, seed)
    weights = Weights(*(scale * matrix for matrix in weights))
    largest_y = float(np.max(np.abs(graph.linear(weights.A, x))))
    shrink = min(1.0, MAX_Y / largest_y)
    return weights._replace(A=shrink * weights.A), x


def sigmoid_graph(combine: str = "add", loss: str = "mean_square") -> GraphParams:
    return GraphParams(combine=combine, loss=loss, activation="sigmoid")


@pytest.mark.parametrize(
    ("combine", "loss", "expected"),
    [
        ("add", "sum_square", 8.5),
        ("add", "mean_square", 4.25),
        ("multiply", "sum_square", 1.25),
        ("multiply", "mean_square", 0.625),
    ],
)
def test_forward_loss_of_a_small_graph_written_out(combine, loss, expected):
    # A = 0 gives u = sigmoid(0) = 0.5; B = C = I give v = x = (1, 2) and w = z.
    weights = Weights(A=np.zeros((2, 2)), B=np.eye(2), C=np.eye(2))
    x = np.array([[1.0, 2.0]])

    assert graph.batch_loss(sigmoid_graph(combine, loss), weights, x) == pytest.approx(expected)


def test_batch_loss_is_the_sum_of_the_losses_of_its_rows():
    params = sigmoid_graph()
    weights, x = graph.random_problem(dim=3, samples=4, seed=0)

    one_by_one = sum(graph.batch_loss(params, weights, x[row : row + 1]) for row in range(4))

    assert graph.batch_loss(params, weights, x) == pytest.approx(one_by_one, rel=1e-14)


def test_gradients_of_a_one_dimensional_graph_follow_the_chain_rule_by_hand():
    # a = 0, b = 1, c = 3, x = 2: z = 0.5 + 2 = 2.5, w = 7.5, L = w^2 = 56.25.
    weights = Weights(A=np.array([[0.0]]), B=np.array([[1.0]]), C=np.array([[3.0]]))
    x = np.array([[2.0]])

    loss, gradients = graph.loss_and_gradients(sigmoid_graph(loss="sum_square"), weights, x)

    assert loss == pytest.approx(56.25)
    assert gradients.C[0, 0] == pytest.approx(2 * 7.5 * 2.5)
    assert gradients.B[0, 0] == pytest.approx(2 * 7.5 * 3 * 2)
    assert gradients.A[0, 0] == pytest.approx(2 * 7.5 * 3 * 0.25 * 2)


@GRAPHS
@settings(max_examples=EXAMPLES, deadline=None)
@given(problem=problems())
def test_forward_loss_equals_torch(params, problem):
    weights, x = problem
    expected, _ = torch_loss_and_gradients(params, weights, x)

    assert graph.batch_loss(params, weights, x) == pytest.approx(expected, rel=TOLERANCE)


@GRAPHS
@settings(max_examples=EXAMPLES, deadline=None)
@given(problem=problems())
def test_hand_written_gradients_equal_torch_autograd(params, problem):
    weights, x = problem
    _, expected = torch_loss_and_gradients(params, weights, x)
    _, actual = graph.loss_and_gradients(params, weights, x)

    assert compare(actual, expected).relative < TOLERANCE


@pytest.mark.parametrize(
    "mistake",
    [lambda gradient: gradient / 2, lambda gradient: gradient.T],
    ids=["missing-factor-2", "transposed"],
)
def test_comparison_catches_a_wrong_gradient(mistake):
    params = sigmoid_graph()
    weights, x = graph.random_problem(dim=3, samples=4, seed=0)
    _, expected = torch_loss_and_gradients(params, weights, x)
    _, right = graph.loss_and_gradients(params, weights, x)

    wrong = right._replace(A=mistake(right.A))

    assert compare(wrong, expected).relative > TOLERANCE


def test_relative_error_divides_by_the_largest_reference_entry():
    assert relative_error(np.array([1.0, 2.1]), np.array([1.0, 2.0])) == pytest.approx(0.05)


def test_relative_error_of_two_zero_gradients_is_zero():
    assert relative_error(np.zeros((2, 2)), np.zeros((2, 2))) == 0.0


def test_comparison_refuses_gradients_of_different_shapes():
    weights, _ = graph.random_problem(dim=2, samples=1, seed=0)
    shorter = weights._replace(C=weights.C[:1])

    with pytest.raises(ValueError, match=r"dL/dC: shape \(1, 2\)"):
        compare(shorter, weights)


def test_a_failed_check_names_its_worst_case():
    tolerances = GradcheckParams(
        dims=(2,),
        seeds=(1,),
        samples=2,
        fd_step=1e-6,
        tolerance_torch=1e-10,
        tolerance_fd=1e-6,
        table_dim=2,
        table_seed=1,
    )
    result = CaseResult(
        graph=sigmoid_graph(),
        dim=2,
        seed=1,
        loss_error=0.0,
        errors={
            TORCH: Errors(absolute=1e-3, relative=1e-4, matrix="B"),
            FINITE_DIFFERENCES: Errors(absolute=1e-9, relative=1e-9, matrix="A"),
        },
    )

    message = worst_failure([result], tolerances)

    assert message is not None
    assert "dL/dB vs torch, add/mean_square/sigmoid K=2 seed=1" in message
