"""The whitening layer AGE's encoder ends with: identity until fitted, then decorrelated unit variance."""

from __future__ import annotations

import torch

from engines.models.whiten import Whitening


def correlated(n: int, dim: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    mixing = torch.randn(dim, dim, generator=g) * torch.logspace(-2, 1, dim)[None, :]
    return torch.randn(n, dim, generator=g) @ mixing.T + 5.0


def test_unfitted_whitening_is_the_identity():
    x = correlated(50, 8)
    torch.testing.assert_close(Whitening(8, 1e-3)(x), x)


def test_fitted_whitening_decorrelates_at_the_floor_variance():
    x = correlated(4000, 8)
    eps = 1e-12  # far below every direction's share here: all of them end at the floor
    layer = Whitening(8, eps=eps)
    layer.fit(x)
    y = layer(x).double()
    floor = eps * torch.linalg.eigvalsh(torch.cov(x.T.double())).max()
    torch.testing.assert_close(y.mean(0) / floor.sqrt(), torch.zeros(8, dtype=torch.float64), atol=1e-3, rtol=0)
    identity = torch.eye(8, dtype=torch.float64)
    torch.testing.assert_close(torch.cov(y.T) / floor, identity, atol=1e-3, rtol=0)


def test_no_direction_is_amplified_and_weak_ones_are_kept_as_they_are():
    x = correlated(4000, 8)
    x[:, 0] = 1.0 + 1e-6 * torch.randn(4000, generator=torch.Generator().manual_seed(1))  # almost constant
    layer = Whitening(8, eps=1e-3)
    layer.fit(x)
    assert torch.linalg.matrix_norm(layer.projection.double(), ord=2) <= 1.0 + 1e-5  # gains at most 1
    floor = 1e-3 * torch.linalg.eigvalsh(torch.cov(x.T.double())).max()
    variances = torch.cov(layer(x).T.double()).diagonal()
    assert variances.max() <= floor * (1 + 1e-3) and variances.min() < floor * 1e-6  # the near-constant stays


def test_eps_must_be_positive():
    import pytest

    with pytest.raises(ValueError, match="eps > 0"):
        Whitening(8, eps=0.0)
