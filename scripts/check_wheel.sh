#!/usr/bin/env bash
# Build evalkit's wheel and sdist, install the wheel into a fresh venv outside the checkout, and run
# it from an empty folder: `evalkit --version`, `codecs`, a small `run`, `report` and the app's smoke
# test. The venv reuses the dependencies of PYTHON's environment through a .pth file, so nothing is
# downloaded. Usage: scripts/check_wheel.sh [PYTHON] (default .venv/bin/python). Prints the sizes
# and the install-and-run time.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${1:-.venv/bin/python}"
WORK="$(mktemp -d)"
trap 'if [ -n "${APP_PID:-}" ]; then kill "$APP_PID" 2>/dev/null || true; fi; rm -rf "$WORK"' EXIT  # never "kill 0": that signals this whole process group

# Build from a copy of the checkout's files: building in place would leave an evalkit.egg-info there,
# whose metadata (entry points included) would shadow the installed one's once pyproject.toml changes.
mkdir "$WORK/src"
git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$WORK/src" 2>/dev/null || true
"$PYTHON" -m build --no-isolation --outdir "$WORK/dist" "$WORK/src" >"$WORK/build.log" 2>&1 || { tail -20 "$WORK/build.log"; exit 1; }
WHEEL="$(ls "$WORK"/dist/evalkit-*.whl)"
echo "wheel $(basename "$WHEEL"): $(du -k "$WHEEL" | cut -f1) KiB; sdist: $(du -k "$WORK"/dist/evalkit-*.tar.gz | cut -f1) KiB"

START=$(date +%s%N)
"$PYTHON" -m venv --without-pip "$WORK/venv"
V="$WORK/venv"
"$PYTHON" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])" \
  >"$("$V/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")/dependencies.pth"
"$PYTHON" -m pip --python "$V/bin/python" install -q --no-deps --no-index "$WHEEL"
echo "fresh venv and install: $(( ($(date +%s%N) - START) / 1000000 )) ms"
mkdir "$WORK/run" && cd "$WORK/run"
export EVALKIT_DB_URL="sqlite:///$WORK/run/results.db" PYTHONPATH=""
"$V/bin/python" - <<'PY'
import evalkit, evalkit.resources as r, sys
inside = r.data_root().is_relative_to(sys.prefix) and r.data_root().name == r.PACKAGED
print(f"evalkit from {evalkit.__file__}; data from {r.data_root()}")
sys.exit(0 if inside and evalkit.__file__.startswith(sys.prefix) else "evalkit is not the installed wheel")
PY
"$V/bin/evalkit" --version
"$V/bin/evalkit" codecs >codecs.txt && grep -q "opus-16k-wb" codecs.txt && echo "codecs: $(grep -c . codecs.txt) lines"
MANIFEST="$("$V/bin/python" -c "from evalkit.demo_pipeline import DEMO_MANIFEST; print(DEMO_MANIFEST)")"
cat >small.yaml <<YAML
name: wheel-check
dataset: $MANIFEST
limit: 2
workers: 0
codecs: [reference, g711-mulaw, opus-16k-wb]
metrics: [si_sdr, stoi]
YAML
"$V/bin/evalkit" run small.yaml >run.txt 2>&1 || { cat run.txt; exit 1; }
cat run.txt
! grep -E '  0/[0-9]+ ' run.txt || { echo "a codec/metric of the small run has no ok row"; exit 1; }
"$V/bin/evalkit" report --run wheel-check -o report.html && test -s report.html
PORT="$("$V/bin/python" -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")"
"$V/bin/evalkit" app --port "$PORT" >app.log 2>&1 &
APP_PID=$!
"$V/bin/python" - "$PORT" <<'PY' || { cat app.log; exit 1; }
import sys, time, urllib.request
base = f"http://localhost:{sys.argv[1]}"
for _ in range(120):
    try:
        with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as health, \
                urllib.request.urlopen(f"{base}/signin", timeout=5) as signin:
            assert health.read() == b"ok" and signin.status == 200
            print("app: health ok, sign-in page served")
            break
    except OSError:
        time.sleep(0.5)
else:
    sys.exit("the installed app did not answer within 60 s")
PY
kill "$APP_PID" && wait "$APP_PID" 2>/dev/null || true
echo "install and run from a fresh venv: $(( ($(date +%s%N) - START) / 1000000 )) ms"
