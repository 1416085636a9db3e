"""SelfGait pre-trained (BYOL, no labels) against fine-tuned with labels, on the product's own silhouettes of the
shared CASIA-B clips.

- **pre-trained**: a ``gaitwatch train selfgait`` run (``--pretrained``), label-free.
- **fine-tuned** twice from it with the default schedule (``engines/train/selfgait_finetune.py``, seed 0), on the
  enrolment walks (``--enroll``: nm-01 of 001-004): with the labels of 002-004 only (001 never labelled: how
  fine-tuning carries over to a person it had no label for) and with the labels of all four.
- **scored** on every walk clip (``--walks``, from ``gaitwatch silhouettes extract``), each walk embedded whole:
  gallery nm-01 of 001-004; probes 001's other walks (nm-02..06, bg-01..02, cl-01..02), which no model trained
  on, and 006-nm-01, a stranger never enrolled. Per probe: the nearest gallery subject, the distance to 001's
  gallery walk and to the nearest other subject, and their ratio (under 1: 001 is named; models' distances have
  different scales, the ratio does not). For the stranger: its nearest distance over the median distance of 001's
  normal walks to 001 (over 1: farther than a genuine walk, so a threshold could turn it away).

This is tiny: 4 labelled walks of 4 people, one view, about 70 silhouettes each, against the paper's CASIA-B
fine-tuning (74 training subjects x 110 sequences, 11 views). It shows what fine-tuning does to these few
walks, not SelfGait's accuracy.
Writes benchmarks/results/selfgait_finetune.json and benchmarks/selfgait_finetune.md.

    python benchmarks/selfgait_finetune.py --pretrained /tmp/sil/run --enroll /tmp/sil/enroll \\
        --walks /tmp/a2/all --work /tmp/a2/finetune
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
from pathlib import Path

import numpy as np
import torch

from engines.checkpoint import load, load_encoder
from engines.train.selfgait_run import finetune_selfgait
from sensors.formats.silhouette_dataset import read_dataset

ROOT = Path(__file__).resolve().parents[1]
SHOWN = ("margin", "p_subjects", "k_windows", "frames", "lr", "steps_per_epoch", "epochs", "strip_distance")
GALLERY = ("001", "002", "003", "004")
PROBES = [f"nm-0{n}" for n in range(2, 7)] + ["bg-01", "bg-02", "cl-01", "cl-02"]
STRANGER = "006"


def fine_tune(pretrained: Path, enroll: Path, work: Path, labelled: tuple[str, ...]) -> Path:
    """Fine-tune on the enrolment walks of ``labelled`` (a folder of just those subjects); a rerun resumes it."""
    data = work / ("data-" + "-".join(labelled))
    if not data.exists():
        for subject in labelled:
            shutil.copytree(enroll / subject, data / subject)
    return finetune_selfgait(data, work / ("run-" + "-".join(labelled)), pretrained, seed=0)


def embed(model: Path, walks: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    encoder, _ = load_encoder(model)
    with torch.no_grad():
        return {key: encoder(torch.from_numpy(frames)[None])[0].numpy() for key, frames in walks.items()}


def score(embeddings: dict[str, np.ndarray]) -> dict:
    """Nearest gallery subject and distances per probe walk, and the stranger's."""
    gallery = {s: embeddings[f"{s}/nm-01"] for s in GALLERY}

    def distances(key: str) -> dict[str, float]:
        return {s: float(np.linalg.norm(embeddings[key] - g)) for s, g in gallery.items()}

    probes = []
    for kind in PROBES:
        d = distances(f"001/{kind}")
        other = min(v for s, v in d.items() if s != "001")
        probes.append(
            {
                "walk": f"001-{kind}",
                "nearest": min(d, key=d.get),
                "d_001": d["001"],
                "d_other": other,
                "ratio": d["001"] / other,
                "distances": d,
            }
        )
    d = distances(f"{STRANGER}/nm-01")
    genuine = float(np.median([p["d_001"] for p in probes if p["walk"].startswith("001-nm")]))
    stranger = {
        "walk": f"{STRANGER}-nm-01",
        "nearest": min(d, key=d.get),
        "d_nearest": min(d.values()),
        "over_genuine": min(d.values()) / genuine,
        "distances": d,
    }
    named = sum(p["nearest"] == "001" for p in probes)
    return {"probes": probes, "stranger": stranger, "named": named, "genuine_median": genuine}


def markdown(report: dict) -> str:
    models = report["models"]
    lines = [
        "# SelfGait: pre-trained (BYOL, no labels) against fine-tuned with labels, on the shared CASIA-B clips",
        "",
        f"`{report['command']}`. Method in the script's docstring. Pre-training run: `{report['pretrained']}` "
        f"({report['pretraining']}). Fine-tuning: the default schedule ({report['finetune_config']}), seed 0.",
        "",
        "**How small this is.** 3 or 4 labelled walks, one per person (nm-01, side view, about 70 silhouettes "
        "each) against the paper's fine-tuning on CASIA-B's 74 training subjects x 110 sequences (11 views, "
        "10 walks each). 9 probe walks of one person and one stranger: a handful of decisions, not an accuracy.",
        "",
        "Labels of 002-004: 001 was never labelled (pre-training saw its nm-01, without a label), as a person "
        "enrolled after training would be. Labels of 001-004: every enrolled person labelled.",
        "",
        "Gallery: nm-01 of 001-004. Per probe walk of 001: the nearest gallery subject, and d(001) / d(nearest other) "
        "(under 1: 001 is named; the ratio is comparable across models, raw distances are not).",
        "",
        "| walk | " + " | ".join(m["name"] for m in models) + " |",
        "| --- |" + " --- |" * len(models),
    ]
    for i, kind in enumerate(PROBES):
        cells = []
        for m in models:
            p = m["score"]["probes"][i]
            cells.append(f"{p['nearest']} ({p['ratio']:.2f})")
        lines.append(f"| 001-{kind} | " + " | ".join(cells) + " |")
    lines.append("| **named 001** | " + " | ".join(f"**{m['score']['named']}/{len(PROBES)}**" for m in models) + " |")
    cells = [f"{m['score']['stranger']['nearest']} ({m['score']['stranger']['over_genuine']:.2f})" for m in models]
    lines.append(f"| {STRANGER}-nm-01 (stranger): nearest (distance / genuine median) | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Fine-tuning: "
        + "; ".join(
            f"{m['name']}: {m['seconds']:.0f} s, triplet loss (violating triplets) {m['log'][0]['loss']:.3f} "
            f"-> {m['log'][-1]['loss']:.3f}, over every triplet {m['log'][0]['loss_all_triplets']:.3f} "
            f"-> {m['log'][-1]['loss_all_triplets']:.3f} (first -> last epoch)"
            for m in models
            if m["log"]
        )
        + f". Machine: {report['machine']['cpus']} CPUs, shared with other jobs.",
        "",
        "Raw distances per walk and gallery subject: `benchmarks/results/selfgait_finetune.json`.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pretrained", type=Path, required=True, help="a selfgait pre-training run or model.pt")
    parser.add_argument("--enroll", type=Path, required=True, help="silhouettes of nm-01 of 001-004")
    parser.add_argument("--walks", type=Path, required=True, help="silhouettes of every walk clip")
    parser.add_argument("--work", type=Path, required=True, help="folder for the fine-tuning runs (resumed there)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "selfgait_finetune.json")
    parser.add_argument("--table", type=Path, default=ROOT / "benchmarks" / "selfgait_finetune.md")
    args = parser.parse_args()
    pretrained = args.pretrained / "model.pt" if args.pretrained.is_dir() else args.pretrained
    args.work.mkdir(mode=0o700, parents=True, exist_ok=True)  # copies of people's silhouettes
    walks = {f"{s.key.subject}/{s.key.type}": s.frames for s in read_dataset(args.walks)}
    start = load(pretrained)
    models = [{"name": "pre-trained (no labels)", "path": str(pretrained), "seconds": 0.0, "log": []}]
    for labelled in (GALLERY[1:], GALLERY):
        model = fine_tune(pretrained, args.enroll, args.work, labelled)
        state = load(model)
        name = f"fine-tuned, labels of {labelled[0]}-{labelled[-1]}"
        models.append(
            {
                "name": name,
                "path": str(model),
                "seconds": state["train_seconds"],
                "log": state["log"],
                "labelled_subjects": state["labelled_subjects"],
                "start_scale": state["start_scale"],
            }
        )
        print(name, state["log"][-1], flush=True)
    for m in models:
        m["score"] = score(embed(Path(m["path"]), walks))
        print(m["name"], "named", m["score"]["named"], "stranger", m["score"]["stranger"]["nearest"], flush=True)
    report = {
        "command": f"python benchmarks/selfgait_finetune.py --pretrained {args.pretrained} --enroll {args.enroll} "
        f"--walks {args.walks} --work {args.work}",
        "pretrained": str(pretrained),
        "pretraining": f"BYOL on {', '.join(start['subjects'])} ({start['train_sequences']} walks), "
        f"{start['epoch']} epochs x {start['config']['steps_per_epoch']} steps",
        "finetune_config": ", ".join(f"{k} {load(models[1]['path'])['config'][k]}" for k in SHOWN),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__},
        "models": models,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    args.table.write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
