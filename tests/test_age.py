"""AGE (Rao et al., IJCAI 2020): the encoder honours the contract, the losses mean what the paper says,
and a short self-supervised run learns."""

from __future__ import annotations

import pytest
import torch

from engines.models.age import AGEEncoder, AGEModel
from engines.train.age import AgeMethod, locality_loss, locality_mask

F = 6


@pytest.fixture(autouse=True)
def one_thread():
    """These models are tiny: one thread is fastest, and spares the tests from contention on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def small_config(**overrides: object) -> dict:
    config = AgeMethod.default_config() | {"hidden": 16, "batch_size": 64, "lr": 3e-3}
    return config | overrides


def random_walk_windows(n: int, seed: int = 0) -> torch.Tensor:
    """Skeleton-like windows [n, F, 20, 3]: a random pose drifting by small steps, placed anywhere."""
    g = torch.Generator().manual_seed(seed)
    pose = torch.randn(n, 1, 20, 3, generator=g) * 0.3
    drift = (torch.randn(n, F, 20, 3, generator=g) * 0.02).cumsum(dim=1)
    place = torch.randn(n, 1, 1, 3, generator=g) * 2.0
    return pose + drift + place


def test_default_encoder_maps_windows_to_768():
    torch.manual_seed(0)
    encoder = AgeMethod.build_model(AgeMethod.default_config(), F).encoder
    assert isinstance(encoder, AGEEncoder)
    assert (encoder.method, encoder.f, encoder.embedding_dim) == ("age", F, 768)
    with torch.no_grad():
        out = encoder.eval()(random_walk_windows(3))
    assert out.shape == (3, 768) and out.dtype == torch.float32


def test_encoder_shares_the_training_models_weights():
    torch.manual_seed(0)
    model = AGEModel(AGEEncoder(F, hidden=16))
    model_params = {id(p) for p in model.parameters()}
    assert {id(p) for p in model.encoder.parameters()} == model_params


def test_encoder_ignores_where_the_skeleton_stands():
    torch.manual_seed(0)
    encoder = AGEModel(AGEEncoder(F, hidden=16)).encoder.eval()
    windows = random_walk_windows(4)
    shifted = windows + torch.tensor([1.5, -0.3, 4.0])
    with torch.no_grad():
        torch.testing.assert_close(encoder(shifted), encoder(windows), atol=1e-5, rtol=1e-5)


def test_encoder_is_deterministic_in_eval_mode():
    torch.manual_seed(0)
    encoder = AGEModel(AGEEncoder(F, hidden=16)).encoder.eval()
    windows = random_walk_windows(4)
    with torch.no_grad():
        assert torch.equal(encoder(windows), encoder(windows))
        # one window's embedding does not depend on the rest of the batch
        torch.testing.assert_close(encoder(windows[:1]), encoder(windows)[:1], atol=1e-6, rtol=1e-5)


@pytest.mark.filterwarnings("ignore:The tensor attributes:UserWarning")  # nn.LSTM's flat weights, a torch quirk
def test_encoder_exports_to_a_graph_that_accepts_other_batch_sizes():
    torch.manual_seed(0)
    encoder = AGEModel(AGEEncoder(F, hidden=16)).encoder.eval()
    batch = torch.export.Dim("batch")
    exported = torch.export.export(encoder, (random_walk_windows(2),), dynamic_shapes={"windows": {0: batch}})
    windows = random_walk_windows(5, seed=1)
    with torch.no_grad():
        torch.testing.assert_close(exported.module()(windows), encoder(windows))


def test_model_reconstructs_the_window_in_reverse_order():
    torch.manual_seed(0)
    windows = random_walk_windows(2)
    reconstruction, target, alignments = AGEModel(AGEEncoder(F, hidden=16))(windows)
    centred = windows - windows[:, :, :1]
    assert reconstruction.shape == target.shape == (2, F, 20, 3)
    torch.testing.assert_close(target, centred.flip(1))
    assert alignments.shape == (2, 3, F, F)
    torch.testing.assert_close(alignments.sum(-1), torch.ones(2, 3, F))


def test_locality_mask_is_a_gaussian_around_the_mirrored_step():
    mask = locality_mask(F, 6.0)
    for t in range(F):
        assert mask[t, F - 1 - t] == 1.0
    assert mask[0, 4].item() == pytest.approx(torch.exp(torch.tensor(-1 / 18)).item())  # sigma = D/2 = 3


def test_locality_loss_is_lowest_for_the_mirrored_alignment():
    mask = locality_mask(F, 6.0)
    eye = torch.eye(F)

    def loss(alignment: torch.Tensor) -> float:
        return locality_loss(alignment[None], mask).item()

    mirrored = eye.flip(1)  # decoder step t attends to source step f-1-t
    assert loss(mirrored) == 0.0
    others = [
        eye,
        torch.full((F, F), 1 / F),
        torch.softmax(torch.randn(F, F, generator=torch.Generator().manual_seed(0)), 1),
    ]
    assert all(loss(a) > 0.0 for a in others)
    # one-hot alignments further from the mirrored step cost more
    by_distance = [loss(torch.eye(F)[[min(F - 1 - t + k, F - 1) for t in range(F)]]) for k in range(F)]
    assert by_distance == sorted(by_distance) and by_distance[0] == 0.0 < by_distance[1]


@pytest.mark.parametrize("teacher_forcing", [False, True])
def test_gradient_reaches_every_parameter(teacher_forcing: bool):
    torch.manual_seed(0)
    config = small_config(teacher_forcing=teacher_forcing)
    model = AgeMethod.build_model(config, F)
    AgeMethod.losses(model, random_walk_windows(8), config)["loss"].backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_short_training_lowers_the_loss_and_is_reproducible():
    windows = random_walk_windows(512)
    config = small_config()

    def train(epochs: int) -> tuple[AGEModel, list[dict[str, float]]]:
        torch.manual_seed(0)
        model = AgeMethod.build_model(config, F)
        optimizer = AgeMethod.make_optimizer(model, config)
        generator = torch.Generator().manual_seed(0)
        history = [AgeMethod.train_epoch(model, optimizer, windows, generator, config, False) for _ in range(epochs)]
        return model, history

    torch.manual_seed(0)
    untrained = AgeMethod.build_model(config, F)
    with torch.no_grad():
        before = AgeMethod.losses(untrained, windows, config)
    model, history = train(2)
    with torch.no_grad():
        after = AgeMethod.losses(model, windows, config)
    assert {"loss", "reconstruction", "locality"} <= history[0].keys()
    assert history[1]["loss"] < history[0]["loss"]
    assert after["loss"] < before["loss"] and after["reconstruction"] < before["reconstruction"]
    assert train(1)[1][0] == history[0]


def test_trained_model_whitens_its_encoding_with_the_training_windows(tmp_path):
    from engines.checkpoint import load_encoder
    from engines.train.loop import train

    windows = random_walk_windows(300).numpy()
    overrides = {"hidden": 16, "batch_size": 64, "epochs": 1}
    path = train("age", windows, tmp_path, seed=0, description={}, config_overrides=overrides, show_progress=False)
    encoder, _ = load_encoder(path)
    with torch.no_grad():
        encoding = encoder(torch.from_numpy(windows)).double()
        contexts = encoder.contexts(torch.from_numpy(windows)).double()
    assert encoding.shape == (300, 48)
    torch.testing.assert_close(encoding.mean(0), torch.zeros(48, dtype=torch.float64), atol=1e-3, rtol=0)
    floor = 1e-3 * torch.linalg.eigvalsh(torch.cov(contexts.T)).max()  # whiten_eps x the strongest variance
    assert torch.cov(encoding.T).diagonal().max() <= floor * (1 + 1e-3)  # strong directions shrunk to the floor
    assert not torch.allclose(encoding, contexts)


def test_a_model_without_whitening_keeps_its_raw_contexts():
    encoder = AgeMethod.build_model(small_config(whiten_eps=None), F).encoder
    assert encoder.whiten is None
    windows = random_walk_windows(4)
    with torch.no_grad():
        torch.testing.assert_close(encoder(windows), encoder.contexts(windows))
