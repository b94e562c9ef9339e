#!/usr/bin/env bash
# Longer stage 1 (15 epochs, 3x the committed comparison's 5), same data, recipe and tuning otherwise.
# Run from a snapshot clone of 2b45398 at /tmp/exp so that edits to the checkout cannot leak in.
export HF_HUB_OFFLINE=1 OMP_WAIT_POLICY=PASSIVE PYTHONPATH=/tmp/exp
cd /tmp/exp
for seed in 0 1 2; do
  start=$SECONDS
  python -m lets_core.cli compare --out /work/main/runs/long/s$seed --dataset fashion-mnist --train-limit 12000 \
    --stage1-epochs 15 --tune-epochs 0,1,2 --methods lets,lets-elastic,imwlm,tleg,sws,nested,scratch \
    --no-progress --seed $seed > /work/main/runs/long/s$seed.log 2>&1
  echo "seed $seed rc $? in $((SECONDS - start)) s" >> /work/main/runs/long/done
done
