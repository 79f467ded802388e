"""Train a slot-filling tagger: `python train.py` trains the default model on the
bundled corpus and prints its held-out report. `python train.py --help` for flags."""

import sys

from slotkeras.cli import run_cli, train_main

if __name__ == "__main__":
    sys.exit(run_cli(train_main))
