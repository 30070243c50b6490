#!/bin/sh
# Installs the build into a scratch prefix, builds the consumer project against it with
# find_package(tinytorch), and runs it. usage: run.sh BUILD_DIR CONSUMER_SOURCE WORK_DIR
set -eu
build=$1 src=$2 work=$3
rm -rf "$work"
cmake --install "$build" --prefix "$work/prefix" >/dev/null
cmake -S "$src" -B "$work/build" -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$work/build" >/dev/null
"$work/build/consumer"
echo "consumer built against the installed package and ran: OK"
