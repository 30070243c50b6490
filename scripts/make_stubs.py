#!/usr/bin/env python3
"""Regenerates python/tinytorch/_tinytorch.pyi, the type stubs of the C++ extension (with the
methods tinytorch's Python files add to its classes), from a built package:

    pip install pybind11-stubgen==2.5.5
    PYTHONPATH=build/python python3 scripts/make_stubs.py

pybind11-stubgen writes the stub; this script then makes it valid for mypy: builtin types named
as builtins.* (Tensor has methods called bool, int and float), implicit Optionals spelled out,
numpy imported under a name no method shadows, __eq__/__ne__ (which return tensors) marked as
the deliberate overrides they are, and pybind11's capsule typed as Any. CI checks the stub against the module with
mypy's stubtest (.ci/run)."""
import os
import re
import subprocess
import sys
import tempfile

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python", "tinytorch", "_tinytorch.pyi")


def fix(text):
    # numpy as _np: inside class Tensor, "numpy" is the method Tensor.numpy.
    text = text.replace("import typing\n", "import builtins\nimport typing\n\nimport numpy as _np\n", 1)
    text = re.sub(r"\bnumpy\.(ndarray|dtype)", r"_np.\1", text)
    text = re.sub(r"(def __(eq|ne)__\(self, [^)]*\) -> Tensor:)", r"\1  # type: ignore[override]", text)
    text = re.sub(r"(:\s*|->\s*|\[|,\s*|\|\s*)(bool|int|float|str)\b(?!\()", r"\1builtins.\2", text)
    text = re.sub(r"-> capsule", "-> typing.Any", text)
    text = re.sub(r"^__all__: .*\n", "", text, flags=re.M)  # the extension has no __all__ of its own
    # "x: T = None" -> "x: T | None = None" (PEP 484 has no implicit Optional)
    text = re.sub(r"(\w+): ([^=,()]+?) = None", lambda m: m.group(0) if "None" in m.group(2) or "Any" in m.group(2)
                  else f"{m.group(1)}: {m.group(2)} | None = None", text)
    return text


def main():
    with tempfile.TemporaryDirectory() as out:
        subprocess.run([sys.executable, "-m", "pybind11_stubgen", "tinytorch._tinytorch", "-o", out,
                        "--print-invalid-expressions-as-is"], check=True)
        with open(os.path.join(out, "tinytorch", "_tinytorch.pyi")) as f:
            text = fix(f.read())
    with open(OUT, "w") as f:
        f.write(text)
    print(f"wrote {os.path.normpath(OUT)}")


if __name__ == "__main__":
    main()
