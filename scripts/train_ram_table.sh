#!/bin/sh
# Trains every entry of the README's RAM table (issue 4): RAM with 4, 6 and
# 8 glimpses and the CNN baseline, on fmnist, fmnist-translated60 and
# fmnist-cluttered60, all for the same 10 epochs, one thread each (so each
# run is reproducible). Models go to OUT/NAME.heed, per-epoch logs to
# OUT/NAME.log; scripts/ram_table.py turns the logs into the table.
# WHICH "ram" retrains the RAM entries alone (after a change to RAM that
# leaves the CNN baselines as they were).
#
#   scripts/train_ram_table.sh [HEED [OUT [all|ram]]]   (defaults: build/heed models/table all)
set -eu
heed=${1:-build/heed}
out=${2:-models/table}
which=${3:-all}
case $which in all | ram) ;; *) echo "train_ram_table.sh: WHICH is all or ram, not '$which'" >&2; exit 2 ;; esac
mkdir -p "$out"
ram="--epochs 10 --batch 64 --optimizer adamw --lr 1e-3 --schedule cosine --seed 1 --threads 1 --json"
cnn="--epochs 10 --batch 64 --lr 0.05 --schedule cosine --weight-decay 5e-4 --seed 1 --threads 1 --json"
run() { # NAME NET DATA RECIPE
    echo "training $1" >&2
    OMP_NUM_THREADS=1 HEED_PROGRESS=0 "$heed" train --net "$2" --data "$3" --out "$out/$1.heed" $4 > "$out/$1.log" 2>&1
}
for data in fmnist fmnist-translated60 fmnist-cluttered60; do
    case $data in
    fmnist) ramnet=nets/ram-fmnist-g; cnnnet=nets/fmnist-plain.net ;;
    *) ramnet=nets/ram60-g; cnnnet=nets/cnn60.net ;;
    esac
    for g in 4 6 8; do run "ram-g$g-$data" "$ramnet$g.net" "$data" "$ram"; done
    [ "$which" = ram ] || run "cnn-$data" "$cnnnet" "$data" "$cnn"
done
