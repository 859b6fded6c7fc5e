#!/bin/sh
# Builds the guest side of OpenCL remoting with the host's gcc and OpenCL headers (the same Debian release as the
# guest's libraries): the ICD (liboriel-opencl.so, its dispatch table generated from CL/cl_icd.h) and
# oriel-cl-demo (vector addition, SAXPY, matrix multiplication, zero copy, a bad kernel: see demo.c) and
# oriel-cl-bench (bench/opencl.ts).
# Usage: build.sh <out dir>   (NODE: the node binary that runs the generator; default: node)
set -eu
out=$1
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
echo '#include "oriel.h"' | gcc -E -P -I"$here" -x c - >"$out/cl_icd.i"
"${NODE:-node}" "$here/gen-dispatch.js" "$out/cl_icd.i" "$out" "$here/icd.c" "$here/icd-objects.c" "$here/icd-map.c"
cflags="-O2 -Wall -Wextra -Wno-unused-parameter -Werror"
# Exported: the ICD loader's three entry points (EXPORT in icd.c); everything else is hidden.
gcc $cflags -fPIC -shared -fvisibility=hidden -I"$here" -I"$out" -o "$out/liboriel-opencl.so" \
  "$here/icd.c" "$here/icd-objects.c" "$here/icd-map.c" "$here/window.c" "$here/transport.c" \
  "$out/dispatch.gen.c" -lpthread
gcc $cflags -o "$out/oriel-cl-demo" "$here/demo.c" -lOpenCL
gcc $cflags -o "$out/oriel-cl-bench" "$here/bench.c" -lOpenCL
rm -f "$out/cl_icd.i"
