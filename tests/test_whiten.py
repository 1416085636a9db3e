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


def test_fitted_whitening_decorrelates_at_the_strongest_directions_scale():
    x = correlated(4000, 8)
    layer = Whitening(8, eps=0.0)
    layer.fit(x)
    y = layer(x).double()
    strongest = torch.linalg.eigvalsh(torch.cov(x.T.double())).max()
    torch.testing.assert_close(y.mean(0), torch.zeros(8, dtype=torch.float64), atol=1e-3, rtol=0)
    identity = torch.eye(8, dtype=torch.float64)
    torch.testing.assert_close(torch.cov(y.T) / strongest, identity, atol=1e-3, rtol=0)


def test_eps_keeps_weak_directions_from_being_amplified():
    x = correlated(4000, 8)
    x[:, 0] = 1.0 + 1e-6 * torch.randn(4000, generator=torch.Generator().manual_seed(1))  # almost constant
    strict, floored = Whitening(8, eps=0.0), Whitening(8, eps=1e-3)
    strict.fit(x)
    floored.fit(x)
    assert floored.projection.abs().max() < strict.projection.abs().max() / 100
    strongest = torch.linalg.eigvalsh(torch.cov(x.T.double())).max()
    variances = torch.cov(floored(x).T.double()).diagonal() / strongest
    assert variances.max() <= 1.0 + 1e-3 and variances.min() < 1e-3  # the floored direction is not raised to 1
