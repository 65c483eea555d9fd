#!/usr/bin/env bash
# The dashboard benchmark (issue 7) in a browser with a GPU: headless Chromium on the GPU machine,
# WebGL on its NVIDIA GPU (ANGLE on Vulkan, or EGL).
#
# The GPU machine has no network and takes at most 64 MiB per call, and what it needs (Debian's
# chromium-headless-shell, 89 MB compressed; the libraries it links; Streamlit, Plotly and this
# project's Python dependencies as wheels; the GL loaders) is about 150 MB. So it travels in three
# carried folders over three calls made while the machine stays warm, each staged in /tmp/stage:
#
#   here:   bash benchmarks/gpu_dashboard.sh pack                  # fills .bb1 .bb2 .bb3 (git-ignored)
#   call 1: carry [".bb1"]  bash benchmarks/gpu_dashboard.sh stage .bb1 && bash benchmarks/gpu_dashboard.sh probe
#   call 2: carry [".bb2"]  bash benchmarks/gpu_dashboard.sh stage .bb2
#   call 3: carry [".bb3"]  bash benchmarks/gpu_dashboard.sh stage .bb3 && bash benchmarks/gpu_dashboard.sh run 2>&1 | tee $OUT/log
#
# `run` is `setup` (unpack the browser, find the flags that give WebGL on the GPU: /tmp/chromium/env.sh)
# then `bench`.
#
# `run` writes $OUT/dashboard-gpu.json (headless Chromium, WebGL on the GPU through Vulkan).
# (Software WebGL there could not be forced: with --disable-gpu --use-angle=swiftshader the page
# still reported the NVIDIA renderer; this project's 2-core machine gives the software numbers.)
set -o pipefail
cmd=${1:?pack, stage DIR, probe, setup, bench or run}
root=$(cd "$(dirname "$0")/.." && pwd)
stage=/tmp/stage

pack() {
  cd "$root"
  for d in .bb1 .bb2 .bb3; do grep -qx "/$d/" .git/info/exclude 2>/dev/null || echo "/$d/" >> .git/info/exclude; done
  rm -rf .bb1 .bb2 .bb3 && mkdir -p .bb1/wheels .bb2 .bb3
  tmp=$(mktemp -d)
  # Python 3.12 wheels of what the GPU image lacks (its list: /work/.library/device/KINDS.md)
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux1_x86_64 -d .bb1/wheels \
    streamlit plotly altair jsonschema jsonschema-specifications referencing rpds-py starlette uvicorn \
    websockets itsdangerous python-multipart watchdog narwhals protobuf sqlalchemy greenlet alembic mako \
    optuna colorlog pydantic pydantic-core annotated-types typing-inspection
  # the GL loaders (device README): unpacked over / there
  (cd .bb1 && mkdir -p gl && cd gl && apt-get download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 >/dev/null)
  # the browser, without its Vulkan validation layers and mock driver, crash reporter, other locales
  (cd "$tmp" && apt-get download chromium-headless-shell chromium-common >/dev/null && for f in *.deb; do dpkg -x "$f" x; done)
  tar -C "$tmp/x/usr/lib/chromium" -cf - --exclude='libVkLayer_khronos_validation.so*' --exclude='libVkICD_mock*' \
      --exclude=chrome_crashpad_handler --exclude='locales/[!e]*' . | xz -9e -T0 > "$tmp/chromium.tar.xz"
  split -b 52M "$tmp/chromium.tar.xz" "$tmp/chromium.tar.xz."
  mv "$tmp/chromium.tar.xz.aa" .bb2/ && mv "$tmp/chromium.tar.xz.ab" .bb3/
  # the shared libraries it links, as Debian 12 has them, except the C runtime the machine has;
  # NSS's modules (loaded at run time); one font family and a fontconfig that finds it
  mkdir -p "$tmp/lib/lib" "$tmp/lib/fonts"
  ldd "$tmp/x/usr/lib/chromium/chromium-headless-shell" | awk '/=> \//{print $3}' \
    | grep -Ev '/(libc|libm|libdl|libpthread|librt|libstdc\+\+|libgcc_s)\.so' | xargs -I{} cp -L {} "$tmp/lib/lib/"
  cp -L /usr/lib/x86_64-linux-gnu/{libsoftokn3,libfreebl3,libfreeblpriv3,libnssckbi}.so "$tmp/lib/lib/" 2>/dev/null
  cp -L /usr/share/fonts/truetype/dejavu/DejaVuSans{,-Bold}.ttf "$tmp/lib/fonts/"
  tar -C "$tmp/lib" -cf - . | xz -9 -T0 > .bb3/libs.tar.xz
  rm -rf "$tmp"
  du -sh .bb1 .bb2 .bb3
}

probe() {  # what the machine has for a browser, before the browser travels
  install_python && python3 -c "import streamlit, plotly, sqlalchemy, optuna, pydantic; print('python ok', streamlit.__version__)"
  ldd --version | head -1; cat /etc/os-release | grep PRETTY
  for l in libnss3 libgbm libasound libatk-1.0 libxkbcommon libcups libdrm libEGL libvulkan libX11 libfontconfig; do
    echo "$l: $(ldconfig -p | grep -c "$l")"
  done
  ls /usr/local/nvidia/share/glvnd/egl_vendor.d /usr/local/nvidia/share/vulkan/icd.d /usr/share/glvnd/egl_vendor.d 2>&1
  nproc; free -g | head -2
}

stage_dir() {  # move a carried folder out of the repository, where the next call keeps it
  mkdir -p "$stage" && cp -a "$root/$1"/. "$stage"/ && echo "staged $1: $(du -sh "$stage" | cut -f1) in $stage"
}

install_python() {
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    "$stage"/wheels/*.whl || return 1
  export PYTHONPATH=/tmp/site:$root PYTHONUNBUFFERED=1
}

setup() {  # unpack the staged browser and find its GPU flags; /tmp/chromium/env.sh keeps the result
  # LOCAL_TEST=1: a rehearsal on a development machine (its own Python packages and GL libraries)
  [ -n "$LOCAL_TEST" ] || install_python || return 1
  [ -n "$LOCAL_TEST" ] || { for f in "$stage"/gl/*.deb; do dpkg -x "$f" /; done; ldconfig; }
  rm -rf /tmp/chromium /tmp/chromium-libs && mkdir -p /tmp/chromium /tmp/chromium-libs
  cat "$stage"/chromium.tar.xz.* | xz -d | tar -C /tmp/chromium -xf - || return 1
  xz -d < "$stage"/libs.tar.xz | tar -C /tmp/chromium-libs -xf - || return 1
  printf '%s\n' '<?xml version="1.0"?><!DOCTYPE fontconfig SYSTEM "fonts.dtd">' \
    '<fontconfig><dir>/tmp/chromium-libs/fonts</dir><cachedir>/tmp/chromium-libs/cache</cachedir></fontconfig>' \
    > /tmp/chromium-libs/fonts.conf
  # the bundled libraries for the browser alone (Python keeps the machine's)
  printf '#!/bin/sh\nLD_LIBRARY_PATH=/tmp/chromium-libs/lib:/tmp/chromium exec /tmp/chromium/chromium-headless-shell "$@"\n' \
    > /tmp/chromium/run && chmod +x /tmp/chromium/run
  LD_LIBRARY_PATH=/tmp/chromium-libs/lib:/tmp/chromium ldd /tmp/chromium/chromium-headless-shell | grep "not found"
  {
    echo "export PYTHONPATH=/tmp/site:$root PYTHONUNBUFFERED=1 FONTCONFIG_FILE=/tmp/chromium-libs/fonts.conf EXE=/tmp/chromium/run"
    echo "export BASE_ARGS='--no-sandbox --disable-background-networking --disable-component-update --disable-sync --no-first-run'"
    if [ -e /usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json ]; then
      echo "export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json"
      echo "export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json"
    fi
  } > /tmp/chromium/env.sh
  . /tmp/chromium/env.sh
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
  # the flags for WebGL on the GPU: the first set whose renderer names NVIDIA
  for flags in "--use-angle=vulkan --enable-features=Vulkan --ignore-gpu-blocklist" \
               "--use-gl=angle --use-angle=gl-egl --ignore-gpu-blocklist"; do
    r=$(timeout 90 python3 "$root/benchmarks/dashboard.py" --webgl-only --driver cdp --chromium "$EXE" \
        --browser-args "$BASE_ARGS $flags" 2>&1 | tail -2)
    echo "flags [$flags] -> $r"
    if echo "$r" | grep -qi nvidia; then echo "export GPU_ARGS='$flags'" >> /tmp/chromium/env.sh; return 0; fi
  done
  echo "no flags gave WebGL on the GPU"
  return 1
}

bench() {  # the full benchmark (seeding, the server's timings, the browser's) with WebGL on the GPU
  # ROUNDS rounds of browser loads (the page, the page with every chart, the floor): the machine's
  # speed changes from minute to minute, so one round says little
  . /tmp/chromium/env.sh
  cd "$root" || return 1
  timeout 540 python3 benchmarks/dashboard.py --db /tmp/d10k.db --driver cdp --chromium "$EXE" \
    --browser-args "$BASE_ARGS $GPU_ARGS" --device nvidia-h200-host --rounds "${ROUNDS:-7}" \
    --out "$OUT/dashboard-gpu.json"
}

case "$cmd" in
  pack) pack ;;
  stage) stage_dir "${2:?which folder}" ;;
  probe) probe ;;
  setup) setup ;;
  bench) bench ;;
  run) setup && bench ;;
  *) echo "unknown command: $cmd (pack, stage DIR, probe, setup, bench or run)"; exit 2 ;;
esac
