"""The six equations of part 1: forward and hand-written backward, batched.

Letters: N is the number of inputs in a batch, K the size of each input x and
the side of the square matrices A, B and C. One input x gives

    y = A x          u = act(y)           v = B x
    z = u + v        w = C z              L = mean(w ** 2)

where `act` is sigmoid, tanh or relu, the gate `z` may be the elementwise
product u * v instead of the sum, and L may be the sum of squares instead of
their mean. A batch holds one input per row (x is N x K), so `y = A x` for
every row at once reads `y = x @ A.T`, and the loss of a batch is the sum of
the losses of its rows.

Each primitive below keeps its forward rule and its gradient rule next to each
other; the backward pass only chains them, in the reverse order of the forward
pass.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from nnlab.params import GraphParams

Array = np.ndarray


class Weights(NamedTuple):
    """The three K x K matrices of the graph."""

    A: Array
    B: Array
    C: Array


class Gradients(NamedTuple):
    """dL/dA, dL/dB and dL/dC of a batch loss, each K x K."""

    A: Array
    B: Array
    C: Array


class Trace(NamedTuple):
    """Every value the forward pass makes, kept for the backward pass."""

    x: Array
    y: Array
    u: Array
    v: Array
    z: Array
    w: Array
    losses: Array


class Rule(NamedTuple):
    """One primitive: its forward function, then its local gradient."""

    forward: Callable[..., Array]
    backward: Callable[..., tuple[Array, ...] | Array]


def sigmoid(y: Array) -> Array:
    """1 / (1 + exp(-y)).

    Below y = -709, exp(-y) overflows to inf, which gives the right limit 0.
    """
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-y))


# u = act(y), elementwise; then its slope du/dy, from y and u.
ACTIVATIONS: dict[str, Rule] = {
    "sigmoid": Rule(
        sigmoid,
        lambda y, u: u * (1.0 - u),
    ),
    "tanh": Rule(
        np.tanh,
        lambda y, u: 1.0 - u**2,
    ),
    "relu": Rule(
        lambda y: np.maximum(y, 0.0),
        lambda y, u: (y > 0).astype(y.dtype),
    ),
}

# z = join(u, v), elementwise; then (dL/du, dL/dv), from u, v and dL/dz.
COMBINES: dict[str, Rule] = {
    "add": Rule(
        lambda u, v: u + v,
        lambda u, v, dz: (dz, dz),
    ),
    "multiply": Rule(
        lambda u, v: u * v,
        lambda u, v, dz: (dz * v, dz * u),
    ),
}

# L = loss(w), one value per row; then dL/dw, row by row.
LOSSES: dict[str, Rule] = {
    "mean_square": Rule(
        lambda w: np.mean(w**2, axis=1),
        lambda w: 2.0 * w / w.shape[1],
    ),
    "sum_square": Rule(
        lambda w: np.sum(w**2, axis=1),
        lambda w: 2.0 * w,
    ),
}


def linear(M: Array, x: Array) -> Array:
    """y = M x for every row of x."""
    return x @ M.T


def linear_matrix_gradient(x: Array, dy: Array) -> Array:
    """dL/dM of y = M x: the sum over rows of the outer products dy x^T."""
    return dy.T @ x


def linear_input_gradient(M: Array, dy: Array) -> Array:
    """dL/dx of y = M x: M^T dy for every row, that is dy @ M."""
    return dy @ M


def forward(graph: GraphParams, weights: Weights, x: Array) -> Trace:
    """The six equations on a batch x, with every intermediate value."""
    A, B, C = weights
    activation = ACTIVATIONS[graph.activation]
    combine = COMBINES[graph.combine]
    loss = LOSSES[graph.loss]

    y = linear(A, x)  # N x K, like u, v, z and w
    u = activation.forward(y)
    v = linear(B, x)
    z = combine.forward(u, v)
    w = linear(C, z)
    losses = loss.forward(w)  # N
    return Trace(x, y, u, v, z, w, losses)


def backward(graph: GraphParams, weights: Weights, trace: Trace) -> Gradients:
    """dL/dA, dL/dB, dL/dC of the batch loss sum_n L(x_n), from its trace."""
    _, _, C = weights
    x, y, u, v, z, w, _ = trace

    dw = LOSSES[graph.loss].backward(w)  # L = loss(w)
    dC = linear_matrix_gradient(z, dw)  # w = C z
    dz = linear_input_gradient(C, dw)
    du, dv = COMBINES[graph.combine].backward(u, v, dz)  # z = join(u, v)
    dB = linear_matrix_gradient(x, dv)  # v = B x
    dy = du * ACTIVATIONS[graph.activation].backward(y, u)  # u = act(y)
    dA = linear_matrix_gradient(x, dy)  # y = A x
    return Gradients(dA, dB, dC)


def batch_loss(graph: GraphParams, weights: Weights, x: Array) -> float:
    """sum_n L(x_n) over the rows of x."""
    return float(np.sum(forward(graph, weights, x).losses))


def mean_loss(graph: GraphParams, weights: Weights, x: Array) -> float:
    """The average of L(x_n) over the rows of x."""
    return float(np.mean(forward(graph, weights, x).losses))


def loss_and_gradients(graph: GraphParams, weights: Weights, x: Array) -> tuple[float, Gradients]:
    """The batch loss sum_n L(x_n) and its gradients for A, B and C."""
    trace = forward(graph, weights, x)
    return float(np.sum(trace.losses)), backward(graph, weights, trace)


def step(weights: Weights, gradients: Gradients, learning_rate: float) -> Weights:
    """One gradient-descent update: each matrix moves against its gradient."""
    pairs = zip(weights, gradients, strict=True)
    return Weights(*(matrix - learning_rate * grad for matrix, grad in pairs))


def random_problem(dim: int, samples: int, seed: int) -> tuple[Weights, Array]:
    """Standard-normal A, B, C and inputs x, for K = dim and N = samples."""
    rng = np.random.default_rng(seed)
    weights = Weights(*(rng.standard_normal((dim, dim)) for _ in range(3)))
    x = rng.standard_normal((samples, dim))
    return weights, x
