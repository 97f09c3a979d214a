# shellcheck shell=bash
# Helpers shared by prepare and run (sourced by tools/gpu-suite.sh).

now() { date +%s.%N; }

seconds_since() {  # seconds since $1 (a now), one decimal
  awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}'
}

json_string() {  # a JSON string literal
  local s=${1//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\t'/ }
  s=${s//$'\r'/ }
  s=${s//$'\n'/ }
  printf '"%s"' "$s"
}

bytes_of() {  # bytes of the files and folders given
  du -scb "$@" 2>/dev/null | tail -1 | cut -f1
}

mib() {  # bytes -> "12.3 MiB"
  awk -v b="$1" 'BEGIN {printf "%.1f MiB", b / 1048576}'
}

# Shared libraries a stock CUDA machine has anyway, or that must come from it: glibc and the loader, the driver
# (libcuda, libnvidia-*), and cuBLAS / cuDNN (hundreds of MB; PyTorch's wheels have them).
not_carried() {
  case "$(basename "$1")" in
    linux-vdso* | ld-linux* | libc.so* | libm.so* | libdl.so* | libpthread.so* | librt.so* | libutil.so* | \
      libresolv.so* | libcuda.so* | libnvidia-* | libcublas* | libcudnn*) return 0 ;;
  esac
  return 1
}

newest_glibc() {  # the newest GLIBC_x.y symbol version the files given need
  objdump -T "$@" 2>/dev/null | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1
}
