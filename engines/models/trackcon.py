"""TrackCon encoder: a window's motion in the walker's own frame plus the body's shape, as a unit vector.

Why this shape of model (each choice measured on the validation split, see ``docs/trackcon.md``):

- **The walker's frame, not the sensor's.** Joints are taken relative to HipCenter and turned about
  the vertical so that the hip and shoulder lines point along +x. The same walk then looks the same
  whichever way the person faces the sensor, and a sensor mounted elsewhere sees the same numbers:
  what differs between sites is the view, not the gait.
- **Positions only.** Frame-to-frame velocities beside the positions scored lower on the validation split
  (and would tie the features to the frame rate); the MLP sees all six frames at once and can difference them.
- **Body shape.** The 19 bone lengths, averaged over the window, do not change while a person
  walks; they carry identity that six frames of motion alone do not.
- **Input statistics in one place.** Every input feature is standardised by a BatchNorm without
  learned scale (its running mean and variance): the one part of the model that describes a
  sensor rather than people, so ``gaitwatch adapt`` re-estimates exactly it on a new site's recordings.
- **Mirror-symmetric** (``symmetric``, on for new runs). A window and its mirror image (left and right
  joints swapped, reflected across the body's midplane) get the same embedding: the model embeds both and
  adds the two unit vectors. One depth sensor sees a walker's near side well and the far side through
  occlusion, and a walk past it (or a semicircle, as KGBD's) shows either side; without the symmetry two
  halves of one KGBD walk lay farther apart than two walks of one person. On held-out validation it
  raised every figure (window and walk accuracy, strangers turned away; ``docs/trackcon.md``). It costs
  the left/right asymmetry of a person's gait, and twice the encoder's work.
- **Unit-length output.** Embeddings are L2-normalised, so Euclidean distance ranks as cosine does,
  and a track's mean embedding is a mean of directions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engines.models.preprocess import HIP_CENTER

# Canonical skeleton (Kinect v1 order): the parent of each joint, -1 for HipCenter.
CANONICAL_PARENTS = (-1, 0, 1, 2, 2, 4, 5, 6, 2, 8, 9, 10, 0, 12, 13, 14, 0, 16, 17, 18)
BONE_CHILDREN = tuple(c for c, p in enumerate(CANONICAL_PARENTS) if p >= 0)
BONE_PARENTS = tuple(p for p in CANONICAL_PARENTS if p >= 0)
SHOULDER_LEFT, SHOULDER_RIGHT, HIP_LEFT, HIP_RIGHT = 4, 8, 12, 16
# Each joint's mirror-image counterpart: the left arm and leg (4-7, 12-15) swap with the right (8-11, 16-19).
MIRROR_JOINTS = (0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 16, 17, 18, 19, 12, 13, 14, 15)


def body_frame(windows: torch.Tensor) -> torch.Tensor:
    """[N, f, 20, 3] -> the same joints relative to HipCenter, turned about y so hips and shoulders point along +x.

    The heading is the window's mean left-to-right direction of hips and shoulders, projected on the
    floor (x, z); a window whose heading cannot be told (zero length) is left unturned.
    """
    centred = windows - windows[:, :, HIP_CENTER : HIP_CENTER + 1, :]
    across = (
        centred[:, :, HIP_RIGHT]
        - centred[:, :, HIP_LEFT]
        + centred[:, :, SHOULDER_RIGHT]
        - centred[:, :, SHOULDER_LEFT]
    )
    across = across.mean(dim=1)
    length = torch.sqrt(across[:, 0] ** 2 + across[:, 2] ** 2 + 1e-12)
    cos = (across[:, 0] / length)[:, None, None]
    sin = (across[:, 2] / length)[:, None, None]
    x, y, z = centred[..., 0], centred[..., 1], centred[..., 2]
    return torch.stack([cos * x + sin * z, y, cos * z - sin * x], dim=-1)


def mirrored(windows: torch.Tensor) -> torch.Tensor:
    """[N, f, 20, 3] -> the mirror image: x negated (a reflection; the body frame undoes any heading) and the
    left and right joints swapped, so that it is again a skeleton whose left side is on its left."""
    flip = torch.tensor([-1.0, 1.0, 1.0], dtype=windows.dtype)
    return windows[:, :, list(MIRROR_JOINTS)] * flip


def bone_lengths(joints: torch.Tensor) -> torch.Tensor:
    """[N, f, 20, 3] -> [N, 19]: each bone's length, averaged over the window's frames."""
    bones = joints[:, :, list(BONE_CHILDREN)] - joints[:, :, list(BONE_PARENTS)]
    return torch.sqrt((bones**2).sum(dim=-1) + 1e-12).mean(dim=1)


class TrackConEncoder(nn.Module):
    """[N, f, 20, 3] canonical windows (metres) -> [N, dim] unit-length embeddings."""

    method = "trackcon"

    def __init__(self, f: int = 6, hidden: int = 512, dim: int = 128, symmetric: bool = False) -> None:
        super().__init__()
        self.f = f
        self.symmetric = symmetric
        self.embedding_dim = dim
        width = f * 60 + len(BONE_CHILDREN)
        self.input_statistics = nn.BatchNorm1d(width, affine=False)
        self.mlp = nn.Sequential(
            nn.Linear(width, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(),
            nn.Linear(hidden, dim),
        )

    def features(self, windows: torch.Tensor) -> torch.Tensor:
        """Body-frame positions and bone lengths [N, f * 60 + 19], before standardisation."""
        joints = body_frame(windows)
        return torch.cat([joints.flatten(1), bone_lengths(joints)], dim=1)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        if not self.symmetric:
            return self._embed(windows)
        # One pass over both (the input statistics see a window and its mirror in the same batch).
        both = self._embed(torch.cat([windows, mirrored(windows)]))
        n = windows.shape[0]
        return F.normalize(both[:n] + both[n:], dim=1)

    def _embed(self, windows: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.mlp(self.input_statistics(self.features(windows))), dim=1)


class WithBodyShape(nn.Module):
    """[N, f, 20, 3] -> [N, dim + 19]: the encoder's embedding, then the window's 19 bone lengths (metres, averaged
    over its frames), which the gallery compares apart and fuses (``engines.track_distance``). What a model exported
    with ``--body-shape`` computes; training never sees it."""

    method = TrackConEncoder.method

    def __init__(self, encoder: TrackConEncoder) -> None:
        super().__init__()
        self.encoder = encoder
        self.f = encoder.f
        self.embedding_dim = encoder.embedding_dim + len(BONE_CHILDREN)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.encoder(windows), bone_lengths(windows)], dim=1)


class TrackConModel(nn.Module):
    """What is trained: the encoder alone (the contrastive loss needs no extra head)."""

    def __init__(self, encoder: TrackConEncoder) -> None:
        super().__init__()
        self.encoder = encoder
