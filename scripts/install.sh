#!/usr/bin/env bash
# Create .venv and install the project. Keeps any torch already present (GPU users: install your CUDA
# build of torch first, or point STUDY_PYTHON at a Python that has it); otherwise installs the CPU build
# torch==2.13.0 instead of letting pip pull a multi-GB CUDA build.
#   bash scripts/install.sh          # the tool
#   bash scripts/install.sh --dev    # plus test dependencies (pytest, selenium, psycopg)
set -euo pipefail
cd "$(dirname "$0")/.."
extras="postgres"
[ "${1:-}" = "--dev" ] && extras="dev,postgres,grpc"
python="${STUDY_PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv --system-site-packages .venv
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  echo "installing the CPU build of torch (keep your own CUDA torch by installing it first)"
  .venv/bin/python -m pip install -q "torch==2.13.0"
fi
.venv/bin/python -m pip install -q -e ".[${extras}]"
.venv/bin/python -c "import torch, transformers, optuna; print(f'installed: torch {torch.__version__}, transformers {transformers.__version__}, optuna {optuna.__version__}')"
