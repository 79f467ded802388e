"""Evaluate a trained tagger: `python evaluate.py` evaluates models/default on the
bundled held-out set. `python evaluate.py --help` for flags."""

import sys

from slotkeras.cli import evaluate_main, run_cli

if __name__ == "__main__":
    sys.exit(run_cli(evaluate_main))
