#!/usr/bin/env bash
# Creates (or updates) .venv with everything VoxTell needs, on the CPU build of PyTorch.
#   bash scripts/setup.sh          runtime (voxtell-core, voxtell-train)
#   bash scripts/setup.sh --training   plus the training extras (requirements/training.txt), torch kept
#   bash scripts/setup.sh --server   plus the server extra (voxtell-core serve; requirements/server.txt)
#   bash scripts/setup.sh --test   plus the training and server extras, the test suite's oracle (voxtell 0.1.2) and
#                                  slicer-core, and the web app's environment with its browser (as --web; Chromium
#                                  via apt-get as root)
#   bash scripts/setup.sh --web    the web app (voxtell-web) in its own .venv-web: trame-slicer pins slicer-core<5.12
# TORCH_SPEC overrides the torch requirement, e.g. TORCH_SPEC="torch==2.8.0" for a CUDA machine; by
# default a Linux machine without an NVIDIA driver gets the CPU build (torch==2.13.0+cpu).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
pip() { .venv/bin/python -m pip "$@"; }
pip install -q --upgrade pip
# Pinned first so that nothing below can swap it for another build (2.9.x is refused: its
# conv3d memory regression). dynamic-network-architectures comes with --no-deps: it asks for
# timm -> torchvision, which would replace the CPU torch with a multi-GB CUDA build.
# Without an NVIDIA driver, PyTorch's CPU build: PyPI's Linux torch is a CUDA build (~3 GB of nvidia packages).
torch_spec=${TORCH_SPEC:-torch==2.13.0}
if [ -z "${TORCH_SPEC:-}" ] && [ "$(uname -s)" = Linux ] && [ ! -e /proc/driver/nvidia/version ]; then
  torch_spec="torch==2.13.0+cpu"
fi
install_torch() {  # $1: the venv's python
  "$1" -m pip install -q "$torch_spec" 2>/dev/null \
    || "$1" -m pip install -q --extra-index-url https://download.pytorch.org/whl/cpu "$torch_spec"
}
install_torch .venv/bin/python
pip install -q -r requirements/runtime.txt
pip install -q --no-deps -r requirements/no-deps.txt
echo "setup: pip may report that dynamic-network-architectures requires timm; that is expected (timm is never imported)."
if [[ " $* " == *" --training "* || " $* " == *" --test "* ]]; then
  # the installed torch as a constraint: a training extra can never replace it (e.g. by a CUDA build)
  pip install -q -r requirements/training.txt -c <(.venv/bin/python -c 'import torch; print("torch==" + torch.__version__)')
fi
if [[ " $* " == *" --server "* || " $* " == *" --test "* ]]; then
  pip install -q -r requirements/server.txt -c <(.venv/bin/python -c 'import torch; print("torch==" + torch.__version__)')
fi
if [[ " $* " == *" --test "* ]]; then
  pip install -q -r requirements/test.txt
  pip install -q --no-deps -r requirements/oracle-no-deps.txt
  # pyright checks statically that what Slicer imports runs on Python 3.9 (tests/test_python39.py);
  # 1.1.405 is the last release whose bundled typeshed still marks what 3.10+ added.
  npm install --silent --no-fund --no-audit --prefix .venv/pyright pyright@1.1.405
  # A real PACS for tests/test_pacs.py: Orthanc with its DICOMweb plugin (Debian/Ubuntu packages).
  if [ ! -x /usr/sbin/Orthanc ] || [ ! -e /usr/share/orthanc/plugins/libOrthancDicomWeb.so ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q orthanc orthanc-dicomweb \
        || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q orthanc orthanc-dicomweb; }
    else
      echo "setup: install the packages orthanc and orthanc-dicomweb (as root: apt-get install orthanc orthanc-dicomweb); tests/test_pacs.py needs them." >&2
    fi
  fi
fi
pip install -q --no-deps -e .
if [[ " $* " == *" --web "* || " $* " == *" --test "* ]]; then
  # Its own venv: trame-slicer 2.0.0 pins slicer-core<5.12 and vtk 9.6.0 (the suite's slicer-core is 5.13).
  [ -x .venv-web/bin/python ] || "$python" -m venv .venv-web
  web_pip() { .venv-web/bin/python -m pip "$@"; }
  web_pip install -q --upgrade pip
  install_torch .venv-web/bin/python
  web_pip install -q -r requirements/runtime.txt -r requirements/web.txt \
    -c <(.venv-web/bin/python -c 'import torch; print("torch==" + torch.__version__)')
  web_pip install -q --no-deps -r requirements/no-deps.txt
  web_pip install -q --no-deps -e .
fi
if [[ " $* " == *" --test "* ]] && ! { [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; }; then
  # The web tests drive Debian's headless Chromium (tests/web/browser.py).
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver
  else
    echo "setup: WARNING: /usr/bin/chromium or /usr/bin/chromedriver is missing and this is not root:" \
         "install them (apt-get install chromium chromium-driver) or tests/test_web_app.py fails." >&2
  fi
fi
