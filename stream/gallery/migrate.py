"""``gaitwatch gallery migrate``: a whole gallery copied between SQLite and PostgreSQL (either way).

Why not export and import: an export keeps vectors only; a migration keeps everything a gallery holds
(names, attributes, anonymity, where each identity came from, every embedding's origin and stored window, every
channel's binding and embeddings), so the copy can be re-embedded and audited like the original. The copy is
bound to the same model, and each channel to its own. Identity ids are given anew by the target, in the
source's order; the target must not exist yet, and it receives everything in one transaction: a failure leaves
it empty, never half-filled.
"""

from __future__ import annotations

from rich.progress import Progress

from stream.gallery.location import Location, open_store


def model_card_of(meta: dict) -> dict:
    """The parts of a model card a gallery records: enough to create another gallery bound to the same model."""
    return {
        "file": {"sha256": meta["model_sha256"], "name": meta["model_name"]},
        "method": meta["model_method"],
        "embedding_dim": meta["dim"],
        "metric": meta["metric"],
        "f": meta["f"],
    }


def migrate(source: Location, target: Location, show_progress: bool = True) -> tuple[int, int]:
    """Copy ``source`` into a new gallery at ``target``; (identities, embeddings) copied (the skeleton's: each
    channel's count is the target's ``channel_counts``)."""
    src = open_store(source, writable=False)
    try:
        dst = open_store(target, model_card_of(src.meta), create=True)
        try:
            return _copy(src, dst, show_progress)
        finally:
            dst.close()
    finally:
        src.close()


def _copy(src, dst, show_progress: bool) -> tuple[int, int]:
    identities = src.identities(counted=False)
    origins = src.origins()
    channels = {name: model_card_of(binding) for name, binding in src.channels().items()}
    copied = 0
    with Progress(transient=True, disable=not show_progress) as progress, dst.transaction():
        task = progress.add_task(f"copying {src.where}", total=len(identities))
        for name, card in channels.items():
            dst.bind_channel(name, card)  # bound even where it holds nothing now
        for identity in identities:
            new = dst.add_identity(identity.name, identity.attributes, identity.anonymous, origins[identity.id])
            vectors, rows = src.enrolled_rows(identity.id)
            if len(vectors):
                dst.add_embeddings(new, vectors, rows)
            copied += len(vectors)
            for name, card in channels.items():
                vectors, rows = src.channel_rows(name, identity.id)
                if len(vectors):
                    dst.add_channel_embeddings(name, new, vectors, rows, card)
            progress.advance(task)
    return len(identities), copied
