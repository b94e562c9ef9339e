#!/usr/bin/env bash
# Learngene width 48 against the committed long-stage1 grid runs (benchmarks/results/compare/long-stage1):
# the same command at each seed: the LeTs variants, the nested ViT (it reads the width: its smallest
# sampled width) and, as in-run rivals and a measure of drift against the committed runs, imwlm and sws;
# sizes 3x6,4x8 (a width-48 learngene cannot make 2 heads). Snapshot clone of ebce2a4 at /tmp/exp.
export HF_HUB_OFFLINE=1 OMP_WAIT_POLICY=PASSIVE PYTHONPATH=/tmp/exp
cd /tmp/exp
for seed in 0 1 2; do
  start=$SECONDS
  python -m lets_core.cli compare --out /work/main/runs/lg48/s$seed --dataset fashion-mnist --train-limit 12000 \
    --stage1-epochs 15 --tune-epochs 0,1 --tune-lr 1.6e-2,4e-3,1e-3 --learngene-width 48 --sizes 3x6,4x8 \
    --methods lets,lets-elastic,imwlm,sws,nested --no-progress --seed $seed > /work/main/runs/lg48/s$seed.log 2>&1
  echo "seed $seed rc $? in $((SECONDS - start)) s" >> /work/main/runs/lg48/done
done
