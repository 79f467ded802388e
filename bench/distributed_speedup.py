"""Speed-up of two local workers (`--strategy multi_worker`) over one process.

    python bench/distributed_speedup.py                       # 600 utterances, 3 epochs, 3 repeats
    python bench/distributed_speedup.py --utterances 2000 --repeats 5

Trains the same small model on the first N utterances of the bundled corpus, once
as a single process (`--strategy auto`, the default strategy) and once as two worker
processes on 127.0.0.1 with the same command line and one TF_CONFIG each (the chief
writes the model). The per-replica batch is the same, so two workers take half the
steps per epoch with a global batch twice as large. Runs alternate (1, 2, 2, 1, ...)
so that a change of load on the machine hits both alike. Reported: the median over
the repeats of the wall-clock time of the whole command (start-up, reading, training,
export) and of `train_seconds` in metrics.json (from the start of training to the
best weights, before the model folder is written). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = [
    "--units", "8", "--layers", "1", "--embedding-dim", "8", "--hash-dim", "8",
    "--hash-buckets", "512", "--output-layer", "softmax", "--verbose", "0",
]  # fmt: skip


def free_ports(count: int) -> list[int]:
    # tests/conftest.py's copy: a benchmark run as a script should not import pytest's conftest.
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def run(workers: int, folder: Path, args: list[str]) -> dict:
    output = folder / f"model-{workers}"
    command = [sys.executable, str(ROOT / "train.py"), *args, "--output", str(output)]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("TF_CONFIG", None)
    logs = [folder / f"worker-{i}.log" for i in range(workers)]
    handles = [open(log, "w") for log in logs]
    started = time.perf_counter()
    if workers == 1:
        processes = [
            subprocess.Popen(
                [*command, "--strategy", "auto"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=handles[0],
            )
        ]
    else:
        cluster = {"worker": [f"127.0.0.1:{p}" for p in free_ports(workers)]}
        processes = []
        for index in range(workers):
            tf_config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
            processes.append(
                subprocess.Popen(
                    [*command, "--strategy", "multi_worker"],
                    env={**env, "TF_CONFIG": json.dumps(tf_config)},
                    stdout=subprocess.DEVNULL,
                    stderr=handles[index],
                )
            )
    codes = [p.wait() for p in processes]
    for handle in handles:
        handle.close()
    wall = time.perf_counter() - started
    if codes != [0] * workers:
        tails = "\n".join(log.read_text(errors="replace")[-2000:] for log in logs)
        raise SystemExit(f"{workers} worker(s) exited {codes}:\n{tails}")
    metrics = json.loads((output / "metrics.json").read_text())
    return {"workers": workers, "wall_s": wall, "train_s": metrics["train_seconds"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=600)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32, help="per replica")
    parser.add_argument("--repeats", type=int, default=3)
    options = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        lines = (ROOT / "data" / "train.csv").read_text(encoding="utf-8").splitlines()
        data = folder / "train.csv"
        data.write_text("\n".join(lines[: options.utterances + 1]) + "\n", encoding="utf-8")
        args = ["--train", str(data), "--epochs", str(options.epochs), "--patience", "100"]
        args += ["--batch-size", str(options.batch_size), *MODEL]
        results = {1: [], 2: []}
        for repeat in range(options.repeats):
            order = (1, 2) if repeat % 2 == 0 else (2, 1)
            for workers in order:
                result = run(workers, folder, args)
                results[workers].append(result)
                print(json.dumps({"repeat": repeat, **result}), file=sys.stderr)

    def median(workers, key):
        return statistics.median(r[key] for r in results[workers])

    print(
        f"{platform.node()}: {os.cpu_count()} CPU cores, load average "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} at the end; "
        f"{options.utterances} utterances, {options.epochs} epochs, batch "
        f"{options.batch_size} per replica, median of {options.repeats}\n"
    )
    print("| | wall clock (s) | train_seconds (s) |")
    print("|---|---:|---:|")
    for workers in (1, 2):
        label = "1 process" if workers == 1 else "2 workers"
        print(f"| {label} | {median(workers, 'wall_s'):.1f} | {median(workers, 'train_s'):.1f} |")
    print(
        f"| speed-up | {median(1, 'wall_s') / median(2, 'wall_s'):.2f}x | "
        f"{median(1, 'train_s') / median(2, 'train_s'):.2f}x |"
    )
    for workers in (1, 2):
        runs = ", ".join(f"{r['wall_s']:.1f}/{r['train_s']:.1f}" for r in results[workers])
        print(f"\nruns with {workers} worker(s), wall/train_seconds: {runs}", end="")
    print()


if __name__ == "__main__":
    main()
