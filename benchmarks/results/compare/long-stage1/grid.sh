#!/usr/bin/env bash
# Tuning-lr grid (chosen on validation per method, size and length) on the 15-epoch stage-1 runs of
# run.sh: each seed's stage 1 and teacher are copied from runs/long/sN into runs/long/sN-grid and reused.
# Snapshot clone of 62e687e at /tmp/exp2.
export HF_HUB_OFFLINE=1 OMP_WAIT_POLICY=PASSIVE PYTHONPATH=/tmp/exp2
cd /tmp/exp2
for seed in 0 1 2; do
  until grep -q "seed $seed rc" /work/main/runs/long/done 2>/dev/null; do sleep 30; done
  dst=/work/main/runs/long/s$seed-grid
  mkdir -p $dst && cp -r /work/main/runs/long/s$seed/stage1-* /work/main/runs/long/s$seed/teacher $dst/
  start=$SECONDS
  python -m lets_core.cli compare --out $dst --dataset fashion-mnist --train-limit 12000 \
    --stage1-epochs 15 --tune-epochs 0,1 --tune-lr 1.6e-2,4e-3,1e-3 \
    --methods lets,lets-elastic,imwlm,tleg,sws,nested,scratch --no-progress --seed $seed > $dst.log 2>&1
  echo "grid seed $seed rc $? in $((SECONDS - start)) s" >> /work/main/runs/long/done
done
