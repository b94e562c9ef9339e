#!/usr/bin/env bash
# Seeds 3 and 4 of run.sh (width 48) and run-width32.sh (width 32), one run at a time.
export HF_HUB_OFFLINE=1 OMP_WAIT_POLICY=PASSIVE PYTHONPATH=/tmp/exp
cd /tmp/exp
for seed in 3 4; do
  start=$SECONDS
  python -m lets_core.cli compare --out /work/main/runs/lg48/s$seed --dataset fashion-mnist --train-limit 12000 \
    --stage1-epochs 15 --tune-epochs 0,1 --tune-lr 1.6e-2,4e-3,1e-3 --learngene-width 48 --sizes 3x6,4x8 \
    --methods lets,lets-elastic,imwlm,sws,nested --no-progress --seed $seed > /work/main/runs/lg48/s$seed.log 2>&1
  echo "seed $seed rc $? in $((SECONDS - start)) s" >> /work/main/runs/lg48/done
  start=$SECONDS
  python -m lets_core.cli compare --out /work/main/runs/lg32/s$seed --dataset fashion-mnist --train-limit 12000 \
    --stage1-epochs 15 --tune-epochs 0,1 --tune-lr 1.6e-2,4e-3,1e-3 --sizes 3x6,4x8 \
    --methods lets,lets-elastic,nested --no-progress --seed $seed > /work/main/runs/lg32/s$seed.log 2>&1
  echo "seed $seed rc $? in $((SECONDS - start)) s" >> /work/main/runs/lg32/done
done
