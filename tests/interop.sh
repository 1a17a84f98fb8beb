#!/bin/sh
# Suite 'interop' (issue 17): ScratchGrad's weights in PyTorch. Runs
# tests/interop.py with a python3 that can import torch and numpy (Debian's
# python3-torch lives in the system python, which may not be the first
# python3 in PATH); exits 77 (meson: skipped) with a message when there is
# none. Arguments: the trainer, the source root.
train=$1
root=$2
for py in python3 /usr/bin/python3; do
    if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import torch, numpy' 2>/dev/null; then
        exec "$py" "$root/tests/interop.py" "$train" "$root"
    fi
done
echo "interop: skipped: no python3 here can import torch and numpy (apt-get install python3-torch)"
exit 77
