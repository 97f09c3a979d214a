# shellcheck shell=bash
# prepare [DIR] [--from BUILD]: builds and packs the GPU suite (sourced by tools/gpu-suite.sh; see its header).

# The test programs with cuda.* cases: GPU_TEST registers them (tests/support/gpu.h), or a file names one itself.
suite_tests() {
  grep -l -E 'GPU_TEST\(|TEST_CASE\("cuda\.' tests/*_test.cpp | xargs -n1 basename | sed 's/\.cpp$//'
}

suite_benches() {
  local src
  for src in bench/gpu_*_bench.cpp; do basename "$src" .cpp; done
  echo nets_bench  # the training step on cuda (part alexnet)
}

cache_value() {  # cache_value BUILD NAME: a CMakeCache.txt entry's value
  sed -n "s/^$2:[A-Z]*=//p" "$1/CMakeCache.txt" 2>/dev/null | head -1
}

# Why BUILD's programs cannot be carried (empty when they can): Release, portable, no sanitizer, sm_90 code.
build_disagrees() {
  local b=$1 archs
  [ -f "$b/CMakeCache.txt" ] || { echo "$b is not a configured build folder"; return; }
  [ "$(cache_value "$b" CMAKE_BUILD_TYPE)" = Release ] || { echo "not Release"; return; }
  [ "$(cache_value "$b" MASSMAP_NATIVE)" != ON ] || { echo "built with -march=native"; return; }
  [ "$(cache_value "$b" MASSMAP_SANITIZE)" != ON ] || { echo "built with sanitizers"; return; }
  [ -n "$(cache_value "$b" CMAKE_CUDA_COMPILER)" ] || { echo "no CUDA compiler"; return; }
  archs=$(build_archs "$b")
  [[ ";$archs;" == *";90;"* ]] || { echo "CUDA architectures $archs lack 90"; return; }
}

build_archs() {  # the CUDA architectures BUILD compiles for (CMakeLists' default when the cache has none)
  local a
  a=$(cache_value "$1" CMAKE_CUDA_ARCHITECTURES)
  echo "${a:-80;90}"
}

needs_dicom() { readelf -d "$1" 2>/dev/null | grep -q 'libdcm'; }

prepare() {
  local dir=gpu-suite from=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --from) from=${2:?--from needs a build folder} && shift ;;
      --from=*) from=${1#--from=} ;;
      -*) die "prepare: unknown option $1" ;;
      *) dir=$1 ;;
    esac
    shift
  done
  cd "$repo_root" || exit 2
  local nvcc=${CUDACXX:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
  [ -x "$nvcc" ] || die "prepare needs nvcc (the CUDA toolkit)"
  local started
  started=$(now)
  # Objects compiled in another build folder of this tree are ccache hits here.
  export CCACHE_BASEDIR=$repo_root

  local wanted=() name
  mapfile -t wanted < <(suite_tests && suite_benches && echo massmap)

  # Programs reused from --from, and the rest, built here with DICOM left out.
  local reused=() to_build=() archs=90 why=""
  if [ -n "$from" ]; then
    why=$(build_disagrees "$from")
    if [ -z "$why" ]; then
      archs=$(build_archs "$from")  # the same flags: its objects are ccache hits for build-gpu-suite
      local reusable=()
      for name in "${wanted[@]}"; do [ "$name" = massmap ] || reusable+=("$name"); done
      cmake --build "$from" --parallel "${JOBS:-2}" --target "${reusable[@]}" >/dev/null ||
        die "bringing $from's programs up to date failed (cmake --build $from --target ${reusable[*]})"
    else
      echo "gpu-suite: not reusing $from: $why" >&2
    fi
  fi
  for name in "${wanted[@]}"; do
    if [ -n "$from" ] && [ -z "$why" ] && [ -x "$from/bin/$name" ] && ! needs_dicom "$from/bin/$name"; then
      reused+=("$name")
    else
      to_build+=("$name")
    fi
  done

  local build=build-gpu-suite
  if [ ${#to_build[@]} -gt 0 ]; then
    local generator=()
    command -v ninja >/dev/null && [ ! -f "$build/Makefile" ] && generator=(-G Ninja)
    mkdir -p "$build"
    # shellcheck disable=SC2086  # SUITE_CMAKE_ARGS is a list of arguments
    cmake -S . -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_COMPILER="$nvcc" \
      "-DCMAKE_CUDA_ARCHITECTURES=$archs" -DMASSMAP_NATIVE=OFF -DMASSMAP_SANITIZE=OFF -DMASSMAP_DICOM=OFF \
      -DMASSMAP_BUILD_TESTS=ON -DMASSMAP_BUILD_BENCH=ON ${SUITE_CMAKE_ARGS:-} >"$build/configure.log" 2>&1 ||
      die "configure failed (see $build/configure.log)"
    grep -q "gpu_gemm_bench" "$build/build.ninja" "$build/Makefile" 2>/dev/null ||
      die "the GPU benchmarks are not configured (CMake found no nvcc, cuBLAS or cuDNN?): see $build/configure.log"
    cmake --build "$build" --parallel "${JOBS:-2}" --target "${to_build[@]}" || die "build failed"
  fi

  local stage=$dir/.stage
  rm -rf "$dir"
  mkdir -p "$stage/bin" "$stage/lib/gcc-runtime"
  for name in "${wanted[@]}"; do
    local src=$build/bin/$name
    [[ " ${reused[*]} " == *" $name "* ]] && src=$from/bin/$name
    cp "$src" "$stage/bin/" || die "cannot copy $src"
    strip --strip-unneeded "$stage/bin/$name" || die "cannot strip $name"
    needs_dicom "$stage/bin/$name" && die "$name links DCMTK: the suite must not carry it"
  done
  for name in $(suite_tests); do  # each test program listed must have cuda.* cases
    local n
    n=$("$stage/bin/$name" --list-test-cases --test-case='cuda.*' --no-skip 2>/dev/null |
      sed -n 's/.*passing the current filters: //p')
    [ "${n:-0}" -gt 0 ] || die "$name has no cuda.* test case, yet its source registers GPU tests"
  done

  # Every library the programs load (ldd resolves the whole tree), minus what the GPU machine provides. The GCC
  # runtime goes to lib/gcc-runtime/: run prefers the GPU machine's own copy where that is at least as new.
  local lib to
  for lib in $(ldd "$stage"/bin/* 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u); do
    not_carried "$lib" && continue
    to=$stage/lib
    case "$(basename "$lib")" in libstdc++.so* | libgcc_s.so* | libgomp.so*) to=$stage/lib/gcc-runtime ;; esac
    cp -L "$lib" "$to/$(basename "$lib")"
    strip --strip-unneeded "$to/$(basename "$lib")" 2>/dev/null || true
  done
  local missing
  missing=$(ldd "$stage"/bin/* 2>/dev/null | grep "not found" | grep -v -E "libcublas|libcudnn|libcuda\.so" | sort -u)
  [ -z "$missing" ] || die "libraries not found here: $missing"
  cp bench/pytorch_nets.py "$stage/"

  local glibc runtime_glibc
  glibc=$(newest_glibc "$stage"/bin/* "$stage"/lib/*.so*)
  runtime_glibc=$(newest_glibc "$stage"/lib/gcc-runtime/*)
  echo "$glibc" >"$stage/glibc-version"
  echo "$runtime_glibc" >"$stage/lib/gcc-runtime/glibc-version"
  {
    echo "massmap GPU suite"
    echo "commit: $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet HEAD 2>/dev/null || echo ' + local changes')"
    echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(sed -n 's/^PRETTY_NAME=//p' /etc/os-release | tr -d '"')," \
      "$("$nvcc" --version | tail -1)"
    echo "cuda architectures: $archs (Release, no -march=native, DICOM left out)"
    echo "needs glibc >= $glibc (our GCC runtime in lib/gcc-runtime: >= $runtime_glibc), an NVIDIA driver for" \
      "CUDA 13, cuBLAS 13 and cuDNN 9 (PyTorch's pip wheels)"
    echo "programs: ${wanted[*]}"
    echo "reused from ${from:-(none)}: ${reused[*]:-(none)}"
    echo "libraries: $(cd "$stage/lib" && echo *.so* gcc-runtime/*.so*)"
  } >"$stage/manifest.txt"

  tar -czf "$dir/suite.tar.gz" -C "$stage" . || die "packing failed"
  local unpacked
  unpacked=$(bytes_of "$stage")
  cp "$stage/manifest.txt" "$dir/"
  rm -rf "$stage"
  mkdir -p "$dir/gpu-suite"
  cp "$script_dir/gpu-suite.sh" "$dir/" && cp "$script_dir"/gpu-suite/*.sh "$dir/gpu-suite/"

  # What a loan carries: the working tree (tracked and untracked files git does not ignore) plus this folder.
  local tree suite total
  tree=$(git ls-files -co --exclude-standard -z | du --files0-from=- -cb 2>/dev/null | tail -1 | cut -f1)
  suite=$(bytes_of "$dir")
  total=$((tree + suite))
  echo "gpu-suite: $dir: ${#wanted[@]} programs ($(mib "$unpacked") unpacked), $(mib "$suite") packed;" \
    "working tree $(mib "$tree"); carried in all $(mib "$total") of the 64 MiB limit" \
    "(prepared in $(seconds_since "$started") s; reused from ${from:-no build}: ${#reused[@]}, built: ${#to_build[@]})"
  [ "$total" -lt "$size_limit" ] || die "the working tree plus $dir are $total bytes: over the 64 MiB limit"
  echo "gpu-suite: needs glibc >= $glibc there. On the GPU machine (carry $dir): tools/gpu-suite.sh run OUT quick"
}
