"""PNG plots for evaluate.py --plots: training curves and per-slot F1 (needs matplotlib)."""

from __future__ import annotations

import csv
from pathlib import Path


def write_plots(model_folder: Path, report: dict, out_dir: Path) -> list[Path]:
    """Writes `training_curves.png` (from the model's history.csv, when present) and
    `per_slot_f1.png` into `out_dir`; returns the paths written."""
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
    return written
