"""Export every model of the KGBD table to ONNX and check that it scores exactly what torch scored.

For each run folder given (and the raw baseline), ``export_onnx_artifact`` writes the ONNX file and
its card (parity at batch 1, 7, 64 recorded there), then the artifact is evaluated through ONNX
Runtime on its own split and compared, metric by metric at the printed precision (2 decimals of a
percentage), with the torch evaluation committed in ``benchmarks/results/kgbd-*/results.json``.
Writes ``benchmarks/results/export_check.json`` and ``benchmarks/export_check.md``.

    python benchmarks/export_check.py runs/simmc-seed{0..4} runs/age-seed{0..4} --data KGBD.zip
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from engines.evaluate import evaluate
from engines.export.artifact import export_onnx_artifact
from engines.protocol import load_protocol, load_split
from engines.runtime.load import open_encoder

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
METRICS = ("top1", "top5", "top10", "mAP", "nAUC")


def torch_scores() -> dict[tuple[str, str], dict]:
    """(method, split) -> the committed torch evaluation row."""
    rows = {}
    for path in RESULTS.glob("kgbd-*/results.json"):
        for row in json.loads(path.read_text())["runs"]:
            rows[(row["method"], row["split"])] = row
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/datasets/kgbd/KinectGait-master.zip")
    args = parser.parse_args()
    reference = torch_scores()
    checks = []
    with tempfile.TemporaryDirectory() as scratch:
        for run in [Path("raw"), *args.runs]:
            out = Path(scratch) / f"{run.name}.onnx"
            card = export_onnx_artifact(run, out)
            encoder = open_encoder(out)
            splits = [card["training"]["split"]] if card["training"] else [f"kgbd:{s}" for s in range(5)]
            for split in splits:
                results = evaluate(encoder, load_protocol(args.data, load_split(split), f=encoder.f, progress=False))
                torch_row = reference[(card["method"], split)]
                same = all(
                    results[level].to_dict()[m] == torch_row[level][m] for level in ("window", "walk") for m in METRICS
                )
                checks.append(
                    {
                        "model": str(run),
                        "method": card["method"],
                        "split": split,
                        "bytes": card["file"]["bytes"],
                        "parity_max_abs_diff": card["parity"]["max_abs_diff"],
                        "same_metrics_as_torch": same,
                        "window_top1": results["window"].to_dict()["top1"],
                        "window_mAP": results["window"].to_dict()["mAP"],
                    }
                )
                print(json.dumps(checks[-1]), flush=True)
    (RESULTS / "export_check.json").write_text(json.dumps(checks, indent=1) + "\n")
    lines = [
        "# Every model of the KGBD table, exported to ONNX and scored through ONNX Runtime",
        "",
        f"`python benchmarks/export_check.py {' '.join(str(r) for r in args.runs)} --data KGBD.zip`.",
        "Parity: largest |ONNX Runtime - torch| over embeddings at batch 1, 7 and 64 (limit 1e-5). Same metrics:",
        "window and walk top-1/5/10, mAP and nAUC equal, to the printed precision, to the torch evaluation",
        "in `benchmarks/results/kgbd-*/results.json`.",
        "",
        "| model | method | split | ONNX size | parity max abs diff | window top-1 | window mAP "
        "| same metrics as torch |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | --- |",
        *(
            f"| {c['model']} | {c['method']} | {c['split']} | {c['bytes'] / 1e6:.2f} MB "
            f"| {c['parity_max_abs_diff']:.1e} "
            f"| {c['window_top1']:.2f} | {c['window_mAP']:.2f} | {'yes' if c['same_metrics_as_torch'] else 'NO'} |"
            for c in checks
        ),
    ]
    (ROOT / "benchmarks" / "export_check.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
