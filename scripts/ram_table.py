#!/usr/bin/python3
"""Prints the README's RAM table from the logs scripts/train_ram_table.sh
writes: test error after the last epoch and the training time, per model
(RAM with 4, 6, 8 glimpses; the CNN baseline) and dataset.

    python3 scripts/ram_table.py [DIR]        (default models/table)
"""
import json
import os
import sys

DATASETS = ["fmnist", "fmnist-translated60", "fmnist-cluttered60"]
MODELS = [("ram-g4", "RAM, 4 glimpses"), ("ram-g6", "RAM, 6 glimpses"),
          ("ram-g8", "RAM, 8 glimpses"), ("cnn", "CNN baseline")]


def last_epoch(path):
    """The last per-epoch JSON line of a `heed train --json` log, or None."""
    last = None
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("{") and '"epoch"' in line:
                    last = json.loads(line)
    except OSError:
        return None
    return last


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "models/table"
    print("| model | " + " | ".join(f"`{d}`" for d in DATASETS) + " |")
    print("|---|" + "---|" * len(DATASETS))
    for key, label in MODELS:
        cells = []
        for d in DATASETS:
            e = last_epoch(os.path.join(root, f"{key}-{d}.log"))
            if e is None:
                cells.append("not trained")
            else:
                cells.append(f"{100 * (1 - e['test_accuracy']):.2f}% "
                             f"({e['epoch']} ep, {e['seconds'] / 60:.0f} min)")
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
