# shellcheck shell=bash
# ci-dry-run [DIR]: the quick dry run as the GPU machine will meet the suite (sourced by tools/gpu-suite.sh).
# A bare root holds only the tools this script calls and the libraries those tools need (glibc, ...), the CUDA
# toolkit (where cuBLAS and cuDNN live, as PyTorch's wheels hold them there) and the suite: a library the suite
# forgot to carry, a path into this checkout or a missing tool fails here. Entered through a user and mount namespace
# (no root needed); where the machine refuses namespaces, the dry run runs under `env -i` on this machine instead,
# which catches less, and says so.

# What run needs on the GPU machine, beyond the suite itself.
bare_root_tools=(bash sh env cat cp mv rm ln mkdir mktemp ls date sed grep awk tar gzip timeout sort tail head tr cut
  wc find dirname basename getconf ldd)

make_bare_root() {  # make_bare_root ROOT
  local root=$1 tool path lib
  mkdir -p "$root"/{usr/bin,usr/lib/x86_64-linux-gnu,lib64,proc,dev,tmp,suite,out,usr/local/cuda}
  chmod 1777 "$root/tmp"
  ln -s usr/bin "$root/bin"
  ln -s usr/lib "$root/lib"
  for tool in "${bare_root_tools[@]}"; do
    path=$(command -v "$tool") || die "ci-dry-run: this machine has no $tool"
    cp -L "$path" "$root/usr/bin/$tool"
  done
  # The tools' libraries (glibc and the few others coreutils, tar and grep need) and the loader.
  for lib in $(ldd "$root"/usr/bin/* 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' |
    sort -u); do
    cp -L "$lib" "$root/usr/lib/x86_64-linux-gnu/$(basename "$lib")"
  done
  cp -L /lib64/ld-linux-x86-64.so.2 "$root/lib64/"
  # The whole of glibc, as every Linux machine has it (the suite carries nothing of it).
  for lib in libc.so.6 libm.so.6 libdl.so.2 libpthread.so.0 librt.so.1 libutil.so.1 libresolv.so.2; do
    path=$(ldconfig -p | awk -v n="$lib" '$1 == n && /x86-64/ {print $NF; exit}')
    [ -n "$path" ] || die "ci-dry-run: glibc's $lib not found here"
    cp -L "$path" "$root/usr/lib/x86_64-linux-gnu/$lib"
  done
}

ci_dry_run() {
  local dir=${1:-gpu-suite}
  cd "$repo_root" || exit 2
  dir=$(cd "$dir" 2>/dev/null && pwd) || die "ci-dry-run: no prepared suite at ${1:-gpu-suite}"
  [ -f "$dir/suite.tar.gz" ] || die "ci-dry-run: $dir holds no suite.tar.gz (run prepare first)"
  local cuda
  cuda=$(readlink -f /usr/local/cuda) || die "ci-dry-run: no CUDA toolkit at /usr/local/cuda"
  local started scratch out status
  started=$(now)
  scratch=$(mktemp -d "${TMPDIR:-/tmp}/massmap-bare-root.XXXXXX") || die "cannot create a temporary folder"
  out=$repo_root/gpu-suite-dry-run
  rm -rf "$out" && mkdir -p "$out"
  make_bare_root "$scratch/root"
  # Where the toolkit keeps cuBLAS and cuDNN; on the GPU machine PyTorch's wheels do.
  local libs=/usr/local/cuda/lib64:/usr/local/cuda/lib
  local inner="mount --rbind /proc '$scratch/root/proc' && mount --rbind /dev '$scratch/root/dev' &&
    mount --bind '$dir' '$scratch/root/suite' && mount --bind '$cuda' '$scratch/root/usr/local/cuda' &&
    mount --bind '$out' '$scratch/root/out' &&
    exec chroot '$scratch/root' /usr/bin/env -i PATH=/usr/bin HOME=/tmp TMPDIR=/tmp NVIDIA_LIB_DIRS=$libs \
      /usr/bin/bash /suite/gpu-suite.sh run /out quick --dry-run"
  if unshare --user --map-root-user --mount true 2>/dev/null; then
    echo "gpu-suite: dry run in a bare root ($(du -sh "$scratch/root" | cut -f1) of tools and their libraries," \
      "the CUDA toolkit and the suite)" >&2
    unshare --user --map-root-user --mount bash -c "$inner"
    status=$?
  else
    echo "gpu-suite: this machine refuses user namespaces: dry run under env -i on the host instead (a library" \
      "the host has but the suite lacks goes unnoticed)" >&2
    env -i PATH=/usr/bin:/bin HOME=/tmp NVIDIA_LIB_DIRS=$libs bash "$dir/gpu-suite.sh" run "$out" quick --dry-run
    status=$?
  fi
  rm -rf "$scratch"
  echo "gpu-suite: dry run ended with status $status in $(seconds_since "$started") s; it wrote" \
    "$(find "$out" -maxdepth 1 -type f | wc -l) files in $out: $(cd "$out" && echo *)" >&2
  return "$status"
}
