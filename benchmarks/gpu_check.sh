#!/usr/bin/env bash
# The `paper` preset on one CUDA GPU (issue 25): what the device machine of docs/guide/gpu.md ran, in one call.
#
#   1. the GPU (nvidia-smi) and the versions of torch and peft found there;
#   2. `pemma-bench profile --preset paper --device cuda`, fp32 and bf16, the run's default strategies;
#   3. benchmarks/kernel_profile.py: kernels launched per step and their time, full fine-tuning, PEMMA-LoRA, -DoRA;
#   4. the fp32 profile again with candidate speed-ups the suite does not use on CUDA: torch.backends.cudnn.benchmark;
#      it and the channels-last layout of volumes and convolution weights (which the suite uses on a CPU only);
#   5. a short run of the `paper` stream on the synthetic cohort at 96^3 (`--device auto --jobs auto
#      --precision bf16`; PEMMA-LoRA, -DoRA, full fine-tuning, early fusion) with REDUCED epochs: base pre-training
#      PRETRAIN_EPOCHS (the preset's 300, patched in this process only; the manifest records it), EPOCHS per
#      experience (the preset's 100).
#
# Needs: the wheels in WHEELS (the suite's own, built from this checkout, and every dependency the machine lacks),
# OUT (the folder the results go to). It installs them into WORK/site and works in WORK (a checkout's pemma_cl/ in
# the working folder would shadow the installed one on sys.path). Every step has its own time limit, so one that
# overruns leaves the results of the others.
set -uo pipefail
: "${OUT:?set OUT to the folder the results go to}" "${WHEELS:?set WHEELS to the folder of wheels}"
PRESET=${PRESET:-paper}  # micro with DEVICE=cpu tries the script on a CPU
STEPS=${STEPS:-10}
PRETRAIN_EPOCHS=${PRETRAIN_EPOCHS:-5}
EPOCHS=${EPOCHS:-2}
TOTAL=${TOTAL:-490}  # seconds the whole script may take: the short run, last, gets what the steps before it left
DEVICE=${DEVICE:-cuda}
WORK=${WORK:-/tmp/gpu_check}
export PYTHONUNBUFFERED=1 PRESET
step() { echo; echo "=== $(date -u +%H:%M:%S) $*"; }
# pemma-bench from the installed package (a file, so that `timeout` can run it): PEMMA_PRETRAIN_EPOCHS=N patches
# PRESET's pre-training epochs in this process, PEMMA_CUDNN_BENCHMARK=1 turns cudnn.benchmark on,
# PEMMA_CHANNELS_LAST=1 makes the training template use the channels-last layout on any device.
WHEELS=$(realpath "$WHEELS"); OUT=$(realpath "$OUT")
mkdir -p "$WORK" && cd "$WORK" || exit 1
cat > pemma_bench.py <<'PY'
import dataclasses, os, sys
import torch
from pemma_cl.models import presets
if "PEMMA_PRETRAIN_EPOCHS" in os.environ:
    name = os.environ["PRESET"]
    presets.PRESETS[name] = dataclasses.replace(presets.PRESETS[name],
                                                pretrain_epochs=int(os.environ["PEMMA_PRETRAIN_EPOCHS"]))
torch.backends.cudnn.benchmark = os.environ.get("PEMMA_CUDNN_BENCHMARK") == "1"
if os.environ.get("PEMMA_CHANNELS_LAST") == "1":
    from pemma_cl.training.template import SegmentationTemplate
    SegmentationTemplate._channels_last = property(lambda self: True)
from pemma_cl.cli.app import main
if __name__ == "__main__":  # run's worker processes (forkserver) import this file again
    sys.argv[0] = "pemma-bench"
    main()
PY
pb="python3 $WORK/pemma_bench.py"

step "machine"
nvidia-smi || echo "no nvidia-smi"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv || true
python3 -c 'import peft, torch; print("found there: torch", torch.__version__, "cuda", torch.version.cuda,
"peft", peft.__version__, "|", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU")'

step "install the carried wheels"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$WORK/site" \
    "$WHEELS"/*.whl || exit 1
export PYTHONPATH=$WORK/site
python3 -c 'import avalanche, monai, peft, torch, pemma_cl, pemma_cl.cli.app
from pemma_cl.registry import load_registry
print("using: torch", torch.__version__, "monai", monai.__version__, "avalanche", avalanche.__version__,
      "peft", peft.__version__, "pemma_cl from", pemma_cl.__file__, "strategies", len(load_registry().entries))' \
    || exit 1

step "profile $PRESET fp32"
timeout 110 $pb profile --preset "$PRESET" --device "$DEVICE" --steps "$STEPS" --out "$OUT/profile-fp32.json"
step "profile $PRESET bf16"
timeout 100 $pb profile --preset "$PRESET" --device "$DEVICE" --steps "$STEPS" --precision bf16 \
    --out "$OUT/profile-bf16.json"
step "kernels per step, fp32"
timeout 70 python3 -m pemma_cl.benchmarks.kernel_profile --preset "$PRESET" --device "$DEVICE" --steps 3 \
    --strategy full-finetune --strategy pemma-lora --strategy pemma-dora \
    --out "$OUT/kernels-fp32.json" --table "$OUT/kernels-fp32.txt"

step "profile $PRESET fp32, cudnn.benchmark on"
PEMMA_CUDNN_BENCHMARK=1 timeout 60 $pb profile --preset "$PRESET" --device "$DEVICE" --steps "$STEPS" \
    --strategy full-finetune --strategy pemma-lora --strategy pemma-dora --out "$OUT/profile-fp32-cudnn-benchmark.json"
step "profile $PRESET fp32, cudnn.benchmark on, channels-last"
PEMMA_CUDNN_BENCHMARK=1 PEMMA_CHANNELS_LAST=1 timeout 60 $pb profile --preset "$PRESET" --device "$DEVICE" \
    --steps "$STEPS" --strategy full-finetune --strategy pemma-lora --strategy pemma-dora \
    --out "$OUT/profile-fp32-cudnn-benchmark-channels-last.json"

step "short run: paper stream, $PRESET preset, synthetic, bf16, epochs: $PRETRAIN_EPOCHS base, $EPOCHS per experience"
nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 500 > memory-used.csv 2>/dev/null &
sampler=$!
started=$(date +%s.%N)
RUN_LIMIT=$((TOTAL - SECONDS - 10))
echo "time limit of the short run: $RUN_LIMIT s"
PEMMA_PRETRAIN_EPOCHS=$PRETRAIN_EPOCHS timeout "$RUN_LIMIT" $pb run --stream paper --preset "$PRESET" \
    --data synthetic --device auto --jobs auto --precision bf16 --epochs "$EPOCHS" --results-dir runs \
    --strategy pemma-lora --strategy pemma-dora --strategy full-finetune --strategy early-fusion | tee run.out
status=$?
wall=$(python3 -c "import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 1))" "$started" "$(date +%s.%N)")
echo "short run: exit $status, wall $wall s, most GPU memory in use (nvidia-smi every 0.5 s):" \
    "$(sort -n memory-used.csv | tail -1) MiB"
kill "$sampler"
folder=$(tail -1 run.out)
[ -d "$folder" ] || folder=$(ls -d "$WORK"/runs/*/ 2>/dev/null | head -1)
[ -n "$folder" ] && tar czf "$OUT/short-run.tar.gz" -C "$(dirname "$folder")" "$(basename "$folder")"
step "done"
