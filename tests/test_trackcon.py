"""TrackCon: the body frame does not depend on the view, the loss learns from tracks alone, training resumes exactly."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from engines.checkpoint import load_encoder
from engines.models.trackcon import CANONICAL_PARENTS, TrackConEncoder, body_frame, bone_lengths, mirrored
from engines.train.augment import DEFAULTS, augment_windows
from engines.train.loop import train
from engines.train.trackcon import (
    TrackConMethod,
    anisotropy,
    batch_loss,
    draw_from_spans,
    learning_rate,
    supervised_contrastive_loss,
    track_batches,
)
from tests.synthetic_gait import synthetic_windows

SMALL = {"hidden": 64, "dim": 32, "tracks_per_batch": 8, "windows_per_track": 4, "steps_per_epoch": 20, "epochs": 3}


def _turn_about_vertical(windows: torch.Tensor, degrees: float) -> torch.Tensor:
    a = math.radians(degrees)
    rotation = torch.tensor([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    return windows @ rotation.T


def _walks(people: int, walks_per_person: int, windows_per_walk: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Synthetic walks: windows, the walk of each (the track) and the person of each (never given to training)."""
    windows, people_of = synthetic_windows(people, walks_per_person * windows_per_walk, seed=seed)
    walks = np.arange(len(windows)) // windows_per_walk
    return windows, walks, people_of


def test_body_frame_is_the_same_from_any_heading_and_place():
    windows = torch.from_numpy(synthetic_windows(3, 5)[0])
    reference = body_frame(windows)
    for degrees in (30.0, 90.0, 181.0, -75.0):
        moved = _turn_about_vertical(windows, degrees) + torch.tensor([2.0, 0.3, -5.0])
        torch.testing.assert_close(body_frame(moved), reference, atol=1e-5, rtol=0)


def test_body_frame_keeps_height_and_bone_lengths():
    windows = torch.from_numpy(synthetic_windows(2, 3)[0])
    turned = body_frame(windows)
    torch.testing.assert_close(bone_lengths(turned), bone_lengths(windows), atol=1e-5, rtol=0)
    centred = windows - windows[:, :, :1]
    torch.testing.assert_close(turned[..., 1], centred[..., 1])  # the vertical is never touched


def test_embeddings_are_unit_vectors_and_do_not_depend_on_heading():
    torch.manual_seed(0)
    encoder = TrackConEncoder(hidden=32, dim=16).eval()
    windows = torch.from_numpy(synthetic_windows(2, 4)[0])
    out = encoder(windows)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(len(out)))
    torch.testing.assert_close(encoder(_turn_about_vertical(windows, 123.0)), out, atol=1e-4, rtol=0)


def test_the_mirror_image_swaps_sides_keeps_the_body_and_undoes_itself():
    windows = torch.from_numpy(synthetic_windows(2, 4)[0])
    image = mirrored(windows)
    torch.testing.assert_close(mirrored(image), windows)
    torch.testing.assert_close(image[:, :, 4, 1:], windows[:, :, 8, 1:])  # ShoulderLeft is the old ShoulderRight
    torch.testing.assert_close(image[:, :, 4, 0], -windows[:, :, 8, 0])
    torch.testing.assert_close(bone_lengths(image).sum(1), bone_lengths(windows).sum(1))
    left_leg, right_leg = [13, 14, 15], [17, 18, 19]  # knee, ankle, foot bones of each side
    children = [c for c, p in enumerate(CANONICAL_PARENTS) if p >= 0]
    left = [children.index(j) for j in left_leg]
    right = [children.index(j) for j in right_leg]
    torch.testing.assert_close(bone_lengths(image)[:, left], bone_lengths(windows)[:, right])


def test_a_symmetric_encoder_embeds_a_window_and_its_mirror_alike_and_the_old_one_does_not():
    torch.manual_seed(0)
    windows = torch.from_numpy(synthetic_windows(2, 4)[0])
    windows[:, :, 13:16] += torch.tensor([0.0, 0.05, 0.0])  # a gait that is not left-right symmetric
    symmetric = TrackConEncoder(hidden=32, dim=16, symmetric=True).eval()
    out = symmetric(windows)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(len(out)))
    torch.testing.assert_close(symmetric(mirrored(windows)), out, atol=1e-5, rtol=0)
    torch.testing.assert_close(symmetric(_turn_about_vertical(mirrored(windows), 57.0)), out, atol=1e-4, rtol=0)
    plain = TrackConEncoder(hidden=32, dim=16).eval()
    plain.load_state_dict(symmetric.state_dict())  # the same weights: the symmetry adds no parameter
    assert (plain(mirrored(windows)) - plain(windows)).abs().max() > 1e-3


def test_runs_made_before_the_symmetric_encoder_load_as_they_were_trained(tmp_path: Path):
    from engines.train.trackcon import TrackConMethod

    config = TrackConMethod.default_config()
    assert config["symmetric"] is True  # new runs
    del config["symmetric"]  # a run saved before the setting existed
    assert TrackConMethod.build_model(config, 6).encoder.symmetric is False


def test_augmentation_keeps_bone_lengths_up_to_the_joint_noise():
    windows = torch.from_numpy(synthetic_windows(2, 8)[0])
    generator = torch.Generator().manual_seed(0)
    changed = augment_windows(windows, generator, {**DEFAULTS, "joint_drop": 0.0})
    assert not torch.allclose(changed, windows)
    difference = (bone_lengths(changed) - bone_lengths(windows)).abs().mean()
    assert difference < 3 * DEFAULTS["joint_noise_m"]  # turned and tilted, never scaled


def test_dropped_joints_sit_on_their_parent():
    windows = torch.from_numpy(synthetic_windows(1, 4)[0])
    quiet = {"tilt_degrees": 0.0, "joint_noise_m": 0.0}
    kept = augment_windows(windows, torch.Generator().manual_seed(1), {**quiet, "joint_drop": 0.0})
    dropped = augment_windows(windows, torch.Generator().manual_seed(1), {**quiet, "joint_drop": 1.0})  # same turn
    parents = [max(p, 0) for p in CANONICAL_PARENTS]
    torch.testing.assert_close(dropped[:, :, 1:], kept[:, :, parents][:, :, 1:])
    torch.testing.assert_close(dropped[:, :, 0], kept[:, :, 0])  # the root stays


def _small_batch_loss(**base: float) -> tuple[TrackConEncoder, Callable[..., torch.Tensor]]:
    """A small encoder and its batch loss on 8 synthetic tracks, as a function of settings over the defaults and
    ``base`` (the same tracks and draws on every call)."""
    windows, walks, _ = _walks(people=4, walks_per_person=2, windows_per_walk=6)
    data, members = torch.from_numpy(windows), track_batches(torch.from_numpy(walks))
    encoder = TrackConEncoder(f=windows.shape[1], hidden=32, dim=16)
    config = {**TrackConMethod.default_config(), **base}

    def loss(**settings: float) -> torch.Tensor:
        return batch_loss(encoder, data, members, 8, torch.Generator().manual_seed(3), {**config, **settings})

    return encoder, loss


def test_the_loss_is_low_when_tracks_are_tight_and_apart_and_high_when_mixed():
    tracks = torch.arange(4).repeat_interleave(3)
    apart = torch.nn.functional.one_hot(tracks, 8).float()
    mixed = torch.nn.functional.normalize(torch.ones(12, 8) + 0.01 * torch.randn(12, 8), dim=1)
    low, high = supervised_contrastive_loss(apart, tracks, 0.1), supervised_contrastive_loss(mixed, tracks, 0.1)
    assert torch.isfinite(low) and torch.isfinite(high)
    # each anchor has 2 positives among 11 others: at best -log(1/2), when mixed about -log(1/11)
    assert low < math.log(2) + 0.01 and high > math.log(11) - 0.1


def test_a_margin_makes_positives_that_win_by_less_than_it_lose():
    # Two tracks of two windows: cosine 0.9 within a track, 0.8 between (a shared part, a track part, a window part).
    tracks = torch.tensor([0, 0, 1, 1])
    shared = torch.zeros(4, 7)
    shared[:, 0] = 0.8**0.5
    shared[torch.arange(4), 1 + tracks] = 0.1**0.5
    shared[torch.arange(4), 3 + torch.arange(4)] = 0.1**0.5
    torch.testing.assert_close(shared.norm(dim=1), torch.ones(4))
    plain = supervised_contrastive_loss(shared, tracks, 0.1)
    margined = supervised_contrastive_loss(shared, tracks, 0.1, margin=0.2)
    # each anchor has one positive among 3 others: without the margin it is the likeliest, with it the least likely
    assert plain < math.log(3) < margined


def test_the_loss_gives_finite_gradients():
    embeddings = torch.nn.functional.normalize(torch.randn(16, 8), dim=1).requires_grad_()
    supervised_contrastive_loss(embeddings, torch.arange(8).repeat_interleave(2), 0.1).backward()
    assert torch.isfinite(embeddings.grad).all()


def test_the_window_term_is_weighted_and_can_be_left_out():
    encoder, loss = _small_batch_loss(windows_per_group=0)
    torch.testing.assert_close(loss(window_weight=2.0), 2 * loss(window_weight=1.0))
    only_tracks = loss(window_weight=0.0, windows_per_group=4)
    only_tracks.backward()  # the track-level term alone still trains the encoder
    assert only_tracks > 0 and all(p.grad is not None for p in encoder.parameters() if p.requires_grad)


def test_groups_drawn_from_a_span_come_from_one_stretch_of_their_track():
    members = track_batches(torch.tensor([0] * 100 + [1] * 40 + [2] * 3))
    drawn = draw_from_spans(members, [0, 1, 2], 8, 0.25, torch.Generator().manual_seed(0)).view(3, 2, 8)
    for track, groups in zip(members, drawn, strict=True):
        assert set(groups.flatten().tolist()) <= set(track.tolist())  # never another track's windows
        width = max(1, math.ceil(0.25 * len(track)))
        assert all(int(g.max() - g.min()) < width for g in groups)  # each group within one stretch
    _, loss = _small_batch_loss(windows_per_group=4)
    torch.testing.assert_close(loss(group_span=1.0), loss())  # the whole track: as runs made before the setting
    assert loss(group_span=0.2) != loss()
    problems = " ".join(TrackConMethod.setting_problems({**TrackConMethod.default_config(), "group_span": 0.0}, 6))
    assert "group_span" in problems


def test_anisotropy_is_zero_when_every_direction_varies_alike_and_grows_as_fewer_carry_the_variance():
    generator = torch.Generator().manual_seed(0)
    even = torch.randn(20000, 8, generator=generator)
    turned, _ = torch.linalg.qr(torch.randn(8, 8, generator=generator))
    assert anisotropy(even).item() == pytest.approx(0.0, abs=0.01)
    assert anisotropy(even @ turned).item() == pytest.approx(0.0, abs=0.01)  # no axes preferred
    two_of_eight = even * torch.tensor([1.0, 1.0, 0, 0, 0, 0, 0, 0])
    assert anisotropy(two_of_eight).item() == pytest.approx(8 / 2 - 1, rel=0.02)  # D / effective dimension - 1


def test_the_isotropy_term_adds_to_the_loss_only_when_weighted():
    config = {**TrackConMethod.default_config(), "windows_per_group": 4}
    _, loss = _small_batch_loss(windows_per_group=4)
    plain, weighted = loss(), loss(isotropy=1.0)
    assert weighted > plain  # 8 tracks' group means in 16 dimensions cannot be isotropic
    torch.testing.assert_close(loss(isotropy=2.0) - plain, 2 * (weighted - plain))
    assert TrackConMethod.setting_problems({**config, "isotropy": 1.0}, 6) == []
    assert "isotropy" in " ".join(
        TrackConMethod.setting_problems({**config, "isotropy": 1.0, "windows_per_group": 0}, 6)
    )
    assert "isotropy" in " ".join(TrackConMethod.setting_problems({**config, "isotropy": -1.0}, 6))


def test_the_learning_rate_warms_up_then_falls_to_zero():
    rates = [learning_rate(step, 100, 1.0) for step in range(100)]
    assert rates[0] < rates[4] == pytest.approx(1.0)
    assert all(a >= b for a, b in itertools.pairwise(rates[5:])) and rates[-1] < 0.01


def test_training_on_tracks_separates_people_it_never_saw_labelled(tmp_path: Path):
    windows, walks, people = _walks(people=8, walks_per_person=2, windows_per_walk=20)
    model = train(
        "trackcon", windows, tmp_path, seed=0, description={"split": "synthetic"},
        config_overrides={**SMALL, "epochs": 4}, show_progress=False, tracks=walks,
    )  # fmt: skip
    encoder, info = load_encoder(model)
    assert info["method"] == "trackcon"
    log = json.loads((tmp_path / "losses.json").read_text())
    assert log[-1]["loss"] < log[0]["loss"]
    with torch.no_grad():
        embedded = encoder(torch.from_numpy(windows)).numpy()
    # each walk's mean against the person's other walk: right in most cases (chance: 1 in 8)
    means = np.stack([embedded[walks == w].mean(0) for w in range(walks.max() + 1)])
    person_of_walk = people[::20]
    distances = np.linalg.norm(means[:, None] - means[None], axis=2)
    np.fill_diagonal(distances, np.inf)
    right = (person_of_walk[distances.argmin(1)] == person_of_walk).mean()
    assert right >= 0.75


def test_trackcon_needs_the_tracks(tmp_path: Path):
    windows, _, _ = _walks(people=2, walks_per_person=1, windows_per_walk=8)
    with pytest.raises(ValueError, match="needs the track"):
        train("trackcon", windows, tmp_path, seed=0, description={}, config_overrides=SMALL, show_progress=False)
    with pytest.raises(ValueError, match="one per window"):
        train("trackcon", windows, tmp_path / "b", seed=0, description={}, config_overrides=SMALL,
              show_progress=False, tracks=np.zeros(3))  # fmt: skip


def test_resume_continues_exactly_schedule_included(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from engines.train import loop

    windows, walks, _ = _walks(people=4, walks_per_person=2, windows_per_walk=10, seed=1)

    def run(folder: Path) -> Path:
        return train("trackcon", windows, folder, seed=3, description={},
                     config_overrides={**SMALL, "pseudo_pairs_from": 2},  # the epoch after the stop pairs tracks
                     show_progress=False, tracks=walks)  # fmt: skip

    straight = run(tmp_path / "straight")
    saves = []

    def save_twice_then_stop(obj: dict, path: Path) -> None:  # a run killed after its second epoch
        if len(saves) == 2:
            raise KeyboardInterrupt
        saves.append(path)
        original(obj, path)

    original = loop.atomic_save
    monkeypatch.setattr(loop, "atomic_save", save_twice_then_stop)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "resumed")
    monkeypatch.setattr(loop, "atomic_save", original)
    resumed = run(tmp_path / "resumed")
    a, b = load_encoder(straight)[0], load_encoder(resumed)[0]
    for (name, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=0, atol=0, msg=name)


def test_the_methods_that_learn_from_tracks_are_the_ones_the_cards_say():
    from engines.model_card import TRACK_METHODS
    from engines.train.methods import METHODS, get_method

    assert {name for name in METHODS if get_method(name).uses_tracks} == set(TRACK_METHODS)
