"""PNG plots for evaluate.py --plots: training curves and per-slot F1 (needs matplotlib)."""

from __future__ import annotations

import csv
from pathlib import Path


def write_plots(model_folder: Path, report: dict, out_dir: Path) -> list[Path]:
    """Writes `training_curves.png` (from the model's history.csv, when present),
    `per_slot_f1.png` and, when the report has `span_calibration`,
    `reliability.png` into `out_dir`; returns the paths written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    history = model_folder / "history.csv"
    if history.is_file():
        with open(history, encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        if rows:
            epochs = [int(r["epoch"]) for r in rows]
            fig, (ax_loss, ax_f1) = plt.subplots(1, 2, figsize=(10, 4))
            for key in [k for k in rows[0] if k.endswith("loss")]:
                ax_loss.plot(epochs, [float(r[key]) for r in rows], marker="o", label=key)
            ax_loss.set_xlabel("epoch")
            ax_loss.set_ylabel("training loss")
            ax_loss.legend()
            for key in ("val_slot_f1", "val_intent_accuracy"):
                if key in rows[0]:
                    ax_f1.plot(epochs, [float(r[key]) for r in rows], marker="o", label=key)
            ax_f1.set_xlabel("epoch")
            ax_f1.set_ylabel("validation (%)")
            ax_f1.legend()
            fig.suptitle(f"Training of {model_folder.name}")
            fig.tight_layout()
            path = out_dir / "training_curves.png"
            fig.savefig(path, dpi=100)
            plt.close(fig)
            written.append(path)
    per_slot = report.get("per_slot", {})
    if per_slot:
        names = sorted(per_slot, key=lambda n: per_slot[n]["f1"])
        fig, ax = plt.subplots(figsize=(8, max(3, 0.25 * len(names) + 1)))
        ax.barh(names, [per_slot[n]["f1"] for n in names], color="tab:blue")
        for i, name in enumerate(names):
            ax.text(101, i, f"n={per_slot[name]['support']}", va="center", fontsize=7)
        ax.set_xlim(0, 115)
        ax.set_xlabel("span F1 (%)")
        ax.set_title(f"Per-slot F1 (micro F1 {report['slot_f1']:.2f})")
        ax.tick_params(axis="y", labelsize=7)
        fig.tight_layout()
        path = out_dir / "per_slot_f1.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        written.append(path)
    calibration = report.get("span_calibration")
    if calibration and calibration["spans"]:
        written.append(_reliability_diagram(plt, calibration, out_dir / "reliability.png"))
    return written


def _reliability_diagram(plt, calibration: dict, path: Path) -> Path:
    """Accuracy against confidence per bin (bars), the diagonal a calibrated model
    would follow, and how many spans each bin holds."""
    rows = [row for row in calibration["bins"] if row["count"]]
    fig, (ax, ax_count) = plt.subplots(
        2, 1, figsize=(5, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    width = calibration["bins"][0]["upper"] - calibration["bins"][0]["lower"]
    lefts = [row["lower"] for row in rows]
    ax.bar(lefts, [r["accuracy"] for r in rows], width, align="edge", label="accuracy",
           color="tab:blue", edgecolor="black")  # fmt: skip
    ax.plot([r["confidence"] for r in rows], [r["accuracy"] for r in rows], "o", color="tab:red",
            label="mean confidence")  # fmt: skip
    ax.plot([0, 1], [0, 1], "--", color="gray", label="calibrated")
    ax.set_ylabel("span accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left")
    ax.set_title(
        f"Span confidence: ECE {calibration['expected_calibration_error']:.2f} "
        f"({calibration['spans']} spans)"
    )
    ax_count.bar(lefts, [r["count"] for r in rows], width, align="edge", color="tab:gray")
    ax_count.set_yscale("log")
    ax_count.set_xlabel("span confidence")
    ax_count.set_ylabel("spans")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
