#!/usr/bin/env bash
# Distributed testing with torchrun: GPUs (nccl) or, without CUDA, CPU processes (gloo).
#
#   bash tools/dist_test.sh CONFIG CHECKPOINT NPROC [tools/test.py options]
#
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR and PORT as for torchrun. PYTHON selects the
# interpreter (default: python), so torchrun runs from the same environment as testing.
set -euo pipefail

if [ "$#" -lt 3 ]; then
  echo "usage: bash $0 CONFIG CHECKPOINT NPROC [tools/test.py options]" >&2
  exit 2
fi
CONFIG=$1
CHECKPOINT=$2
NPROC=$3
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
PYTHON=${PYTHON:-python}
TOOLS_DIR="$(cd "$(dirname "$0")" && pwd)"

PYTHONPATH="$TOOLS_DIR/..${PYTHONPATH:+:$PYTHONPATH}" \
"$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --master_port="$PORT" \
    --nproc_per_node="$NPROC" \
    "$TOOLS_DIR/test.py" \
    "$CONFIG" \
    "$CHECKPOINT" \
    --launcher pytorch "${@:4}"
