"""Score fusion of the skeleton and silhouette channels: one distance per candidate identity.

Why scale each channel by its own impostor scale: the two encoders' distances live in unrelated units (a
skeleton distance of 0.1 and a silhouette distance of 3 can mean the same doubt). The gallery tells each
channel's unit without labels, because two identities enrolled under different names are different people:
the median distance between the enrolled track means of different identities
(``engines.track_distance.impostor_scale``). A candidate's fused distance is

    D = w * d_skeleton + (1 - w) * d_silhouette * (s_skeleton / s_silhouette)

that is, the weighted mean of the two distances each divided by its channel's scale, expressed back in
skeleton units, so that the node's threshold (``calibrate site``, in skeleton units) still reads the same:
an impostor's fused distance sits near the skeleton impostor scale as before, and averaging two channels that
err independently thins the impostors' near tail. Where a channel says nothing (the identity has no
silhouettes enrolled, the track no silhouette window yet, fewer than two identities in a channel to tell its
scale), the candidate keeps its skeleton distance. ``w`` is 0.5 by default, the two scaled channels weighed
equally and not tuned: the only validation data here (halves of the enrollment clips) over-rate silhouettes
(``benchmarks/casia_channels.md``, docs/silhouettes.md); a site with labelled walks of other days sets its own.
"""

from __future__ import annotations

from dataclasses import dataclass

FUSION_WEIGHT = 0.5
"""Weight of the skeleton channel: equal, not tuned (see above)."""


@dataclass(frozen=True)
class FusedMatch:
    identity: int
    distance: float  # fused, in skeleton units; the skeleton distance where the silhouette channel says nothing
    skeleton: float
    silhouette: float | None


def fuse(
    skeleton: list[tuple[int, float]],
    silhouette: dict[int, float],
    weight: float,
    skeleton_scale: float | None,
    silhouette_scale: float | None,
) -> list[FusedMatch]:
    """The skeleton channel's candidates (identity, distance) re-scored with their silhouette distances, nearest
    first. ``silhouette``: identity -> the track's silhouette distance to it (empty: skeleton alone)."""
    usable = bool(silhouette and skeleton_scale and silhouette_scale)
    ratio = skeleton_scale / silhouette_scale if usable else 0.0
    fused = []
    for identity, distance in skeleton:
        other = silhouette.get(identity) if usable else None
        score = distance if other is None else weight * distance + (1.0 - weight) * other * ratio
        fused.append(FusedMatch(identity, float(score), float(distance), None if other is None else float(other)))
    return sorted(fused, key=lambda m: m.distance)
