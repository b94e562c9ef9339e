#!/usr/bin/env bash
# Two copies of run.sh ran at once (the first was not stopped), so seed 2 was started by the copy
# with the first method list. When both compares have ended, rerun seed 2 with the full list: the
# stage 1 and tuning already finished there are reused from their checkpoints.
export HF_HUB_OFFLINE=1 OMP_WAIT_POLICY=PASSIVE PYTHONPATH=/tmp/exp
while pgrep -f "lets_core.cli compare" > /dev/null; do sleep 20; done
cd /tmp/exp
start=$SECONDS
python -m lets_core.cli compare --out /work/main/runs/lg48/s2 --dataset fashion-mnist --train-limit 12000 \
  --stage1-epochs 15 --tune-epochs 0,1 --tune-lr 1.6e-2,4e-3,1e-3 --learngene-width 48 --sizes 3x6,4x8 \
  --methods lets,lets-elastic,imwlm,sws,nested --no-progress --seed 2 > /work/main/runs/lg48/s2-finish.log 2>&1
echo "seed 2 (finish) rc $? in $((SECONDS - start)) s" >> /work/main/runs/lg48/done
