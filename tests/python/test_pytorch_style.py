"""examples/pytorch_style.py is a PyTorch script with tinytorch's imports. It must run on tinytorch,
and the same file with PyTorch's imports must run on PyTorch: proof that only the import lines
differ. Both learn (one epoch on 3000 images), and the state_dict saved and loaded into a fresh
model gives the same test accuracy."""
import os
import subprocess
import sys

import pytest

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "pytorch_style.py")
TORCH_IMPORTS = """import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset
"""


def run(script, tmp_path, out):
    result = subprocess.run([sys.executable, str(script), "--epochs", "1", "--limit", "3000", "--out",
                             str(tmp_path / out)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    trained = float(lines[0].split("test accuracy ")[1].rstrip("%"))
    restored = float(lines[1].split("test accuracy ")[1].rstrip("%"))
    return trained, restored


@pytest.mark.skipif(not os.path.exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_the_same_script_runs_on_tinytorch_and_on_pytorch(tmp_path):
    source = open(EXAMPLE).read()
    begin, end = source.index("# --- imports:"), source.index("# --- end of imports ---")
    outside = (source[:begin] + source[end:]).splitlines()
    assert not [line for line in outside if line.startswith(("import tinytorch", "from tinytorch"))]
    ours = run(EXAMPLE, tmp_path, "ours.safetensors")
    theirs_script = tmp_path / "pytorch_version.py"
    theirs_script.write_text(source[:begin] + TORCH_IMPORTS + source[end:])
    theirs = run(theirs_script, tmp_path, "theirs.pt")
    assert ours[0] > 65.0 and theirs[0] > 65.0, (ours, theirs)
    assert ours[0] == ours[1] and theirs[0] == theirs[1]
