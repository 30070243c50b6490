#!/bin/bash
# Installs what tinytorch needs from Debian 12's packages, builds it, and installs it into
# /usr/local: the `tinytorch` command, the C++ package (find_package(tinytorch)) and the Python
# module for /usr/bin/python3, and pip-installs the Python package for the python3 first on PATH
# when that is another interpreter. Run as root from the repository's top folder.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake git          # compiler and build
  clang libclang-rt-dev libomp-dev   # libFuzzer and sanitizers for the fuzz targets (CI), clang's OpenMP
  clang-format clang-tidy            # the style and lint checks (CI)
  libgtest-dev libbenchmark-dev      # tests and benchmarks
  libopenblas-dev                    # GEMM
  libdlpack-dev                      # DLPack, the zero-copy tensor exchange with PyTorch and numpy
  python3-dev pybind11-dev python3-numpy python3-pytest  # the Python module and its tests
  python3-venv                       # venvs of Debian's python3 (pip install . into one)
  python3-torch                      # PyTorch: the test oracle and the benchmark peer
  python3-matplotlib                 # plots
  python3-tqdm                       # progress bars of the Python training helper
  nlohmann-json3-dev                 # JSON writing (metrics, plots, bench results, checkpoint headers)
  libonnx-dev libprotobuf-dev        # ONNX import: the ONNX project's protobuf definitions and checker
  python3-onnx python3-torchvision   # the ONNX tests' models, exported by PyTorch (scripts/export_models.py)
  zlib1g-dev dataset-fashion-mnist   # the training data (gzip IDX files)
  openmpi-bin libopenmpi-dev         # data-parallel training across processes and machines (mpirun)
  iproute2                           # network namespaces: the distributed tests' second "host"
  time                               # /usr/bin/time: peak memory in bench/train_vs_torch.py
  ccache                             # the wheel's build below reuses the objects of the CMake build
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Both builds below compile the library with the same flags: through ccache the second one takes
# the first one's objects (CMake reads the launcher and the compiler from the environment, pip's
# build included). The compiler is named the same way in both, as ccache tells c++ from g++.
export CMAKE_CXX_COMPILER_LAUNCHER=ccache CXX=${CXX:-g++}
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)"
cmake --install build >/dev/null
echo "setup: built in ./build and installed into /usr/local (tinytorch, the C++ package, the Python module)"

# The Python package for the python3 first on PATH too, when that is not Debian's (a pyenv or a
# venv): pip builds the same sources through pyproject.toml, so `import tinytorch` works there.
py=$(command -v python3 || true)
if [ -n "$py" ] && [ "$(readlink -f "$py")" != "$(readlink -f /usr/bin/python3)" ]; then
  # The wheel is kept in build/dist: CI installs the same file into a fresh venv. Installed in two
  # steps: a rebuilt wheel of the same version replaces the installed one (--force-reinstall), but
  # its dependencies (numpy, tqdm) are only installed where missing, never reinstalled.
  rm -rf build/dist
  "$py" -m pip wheel --quiet --disable-pip-version-check --no-deps -w build/dist . 2>&1 | grep -v "^WARNING: Location" || true
  "$py" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps build/dist/tinytorch-*.whl 2>&1 | grep -v "^WARNING: Location" || true
  "$py" -m pip install --quiet --disable-pip-version-check build/dist/tinytorch-*.whl 2>&1 | grep -v "^WARNING: Location" || true
  "$py" -c "import tinytorch" && echo "setup: pip-installed the Python package for $("$py" -c 'import sys; print(sys.executable)')"
fi
