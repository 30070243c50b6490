"""python -m tinytorch: runs the `tinytorch` command-line tool (train, eval, demo, analyze,
bench) with the given arguments. A pip-installed package carries the tool in tinytorch/bin; a
system install (scripts/setup.sh) has it on PATH."""
import os
import shutil
import sys


def _tool():
    packaged = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bin", "tinytorch")
    if os.access(packaged, os.X_OK):
        return packaged
    found = shutil.which("tinytorch")
    if found and os.path.realpath(found) != os.path.realpath(sys.argv[0]):
        return found
    return None


def main():
    tool = _tool()
    if tool is None:
        sys.stderr.write("tinytorch: the command-line tool is not installed with this package "
                         "(pip install . builds it; scripts/setup.sh installs it system-wide)\n")
        return 2
    os.execv(tool, [tool] + sys.argv[1:])
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
