#!/usr/bin/env bash
# Installs what suanli needs on Debian 12, idempotently:
#   - Debian packages for the build (apt-get, only when one is missing);
#   - with --test, a Python virtual environment under .cache/venv holding the
#     test-only tools (gguf, numpy, pytest, openai, playwright), pinned in tests/py/requirements.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[[ "${1:-}" == "--test" ]] && want_test=1

packages=(
  build-essential cmake ninja-build ccache pkg-config
  libgtest-dev libgmock-dev
  nlohmann-json3-dev libcli11-dev
  libcurl4-openssl-dev libssl-dev
  libpcre2-dev libutf8proc-dev
  libboost-dev
  libhwy-dev
  python3 python3-venv python3-pip
)
if [[ $want_test == 1 ]]; then
  # clang + its runtime for the libFuzzer target; chromium for the web UI
  # test (driven by the playwright Python package, no browser download).
  # hipcc pulls Debian's ROCm 5.2 (clang-15, device libraries, HIP headers):
  # the compile-only HIP build of the GPU device (make build-hip).
  packages+=(clang libclang-rt-14-dev chromium hipcc)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  sudo_cmd=()
  [[ $(id -u) -ne 0 ]] && sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [[ $want_test == 1 ]]; then
  venv=.cache/venv
  stamp=$venv/.requirements.stamp
  if [[ ! -x $venv/bin/python ]]; then
    echo "setup: creating $venv" >&2
    python3 -m venv "$venv"
  fi
  if [[ ! -f $stamp ]] || ! cmp -s tests/py/requirements.txt "$stamp"; then
    "$venv/bin/pip" install -q --disable-pip-version-check -r tests/py/requirements.txt
    cp tests/py/requirements.txt "$stamp"
  fi
fi
