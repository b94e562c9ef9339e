#!/usr/bin/env bash
# The same command as run.sh at the preset's learngene width (32), on this machine, for the
# methods that read the width (lets, lets-elastic, nested): learngene 48 against 32 without the drift
# between machines. imwlm and sws do not read the width: their runs of run.sh serve both.
export HF_HUB_OFFLINE=1 OMP_WAIT_POLICY=PASSIVE PYTHONPATH=/tmp/exp
cd /tmp/exp
for seed in 0 1 2; do
  start=$SECONDS
  python -m lets_core.cli compare --out /work/main/runs/lg32/s$seed --dataset fashion-mnist --train-limit 12000 \
    --stage1-epochs 15 --tune-epochs 0,1 --tune-lr 1.6e-2,4e-3,1e-3 --sizes 3x6,4x8 \
    --methods lets,lets-elastic,nested --no-progress --seed $seed > /work/main/runs/lg32/s$seed.log 2>&1
  echo "seed $seed rc $? in $((SECONDS - start)) s" >> /work/main/runs/lg32/done
done
