"""Rank 0's training log: text and JSON lines per epoch, per-iteration losses, and a PNG."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any


class TrainingLog:
    def __init__(self, folder: Path, resume_iteration: int = 0, iterations_per_epoch: int = 1) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.epochs_file = folder / "training_log.jsonl"
        self.iterations_file = folder / "iterations.jsonl"
        self.text_file = folder / "training_log.txt"
        # Resuming drops what was logged after the checkpoint, so the logs match the run.
        resume_epoch = resume_iteration // iterations_per_epoch
        self.epochs = [e for e in _read_jsonl(self.epochs_file) if e["epoch"] < resume_epoch]
        _write_jsonl(self.epochs_file, self.epochs)
        kept = [r for r in _read_jsonl(self.iterations_file) if r["iteration"] < resume_iteration]
        _write_jsonl(self.iterations_file, kept)

    def message(self, text: str) -> None:
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')}: {text}"
        print(line, flush=True)
        with self.text_file.open("a") as handle:
            handle.write(line + "\n")

    def losses_since(self, iteration: int) -> list[float]:
        return [r["loss"] for r in _read_jsonl(self.iterations_file) if r["iteration"] >= iteration]

    def iteration(self, record: dict[str, Any]) -> None:
        with self.iterations_file.open("a") as handle:
            handle.write(json.dumps(record) + "\n")

    def epoch(self, record: dict[str, Any]) -> None:
        self.epochs.append(record)
        with self.epochs_file.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        summary = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in record.items())
        self.message(summary)
        self.plot()

    def plot(self) -> None:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot as plt

        epochs = [e["epoch"] for e in self.epochs]
        figure, (losses, lr) = plt.subplots(2, 1, figsize=(10, 8), sharex=True)
        losses.plot(epochs, [e["train_loss"] for e in self.epochs], label="train loss", color="tab:blue")
        validated = [e for e in self.epochs if e.get("val_loss") is not None]
        if validated:
            x = [e["epoch"] for e in validated]
            losses.plot(x, [e["val_loss"] for e in validated], label="val loss", color="tab:red")
            dice = losses.twinx()
            dice.plot(x, [e["val_dice"] for e in validated], label="val pseudo Dice", color="tab:green", ls="--")
            dice.set_ylabel("pseudo Dice")
            dice.legend(loc="upper right")
        losses.set_ylabel("loss")
        losses.legend(loc="upper left")
        lr.plot(epochs, [e["lr"] for e in self.epochs], color="tab:gray")
        lr.set_ylabel("learning rate")
        lr.set_xlabel("epoch")
        figure.tight_layout()
        figure.savefig(self.folder / "progress.png", dpi=80)
        plt.close(figure)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()] if path.is_file() else []


def _write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
