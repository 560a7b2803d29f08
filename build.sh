#!/usr/bin/env bash
# SkinScan build, serve and test, on a fresh machine or a warm one.
#
#   ./build.sh            release wasm (+simd128 and a relaxed-SIMD twin) into www/pkg,
#                         models into www/models
#   ./build.sh serve [PORT]   build, then serve www/ on http://127.0.0.1:PORT/ (default 8000)
#   ./build.sh test       every test: cargo test, the training smoke tests, the browser tests
#   ./build.sh bench [--runs N] [--cold N] [--phone-cold N] [--phone-runs N]   our wasm vs
#                         onnxruntime-web on the same model, side by side in headless Chromium, plus
#                         native tract and sizes (issue 5), and under Lighthouse's mobile profile
#                         (issue 15); writes bench/results.json and bench/results.md. Not part of `test`.
#   ./build.sh --help
#
# It installs what a fresh machine lacks: the wasm32 target, wasm-bindgen-cli at the version in
# Cargo.lock, Debian's chromium (tests only), the npm packages in package-lock.json, and a Python
# venv for training/ (tests only). It never downloads browsers or prebuilt binaries (no wasm-pack,
# no `playwright install`): our machines reach only the crates.io, npm, PyPI and Debian registries.
#
# Environment:
#   SKINSCAN_CACHE     caches outside the clone (default ~/.cache/skinscan): cargo target dir, venv
#   CARGO_TARGET_DIR   default $SKINSCAN_CACHE/target
#   SKINSCAN_SAMPLES   images for the browser tests (default ../shared/data/samples)
#   WASM_OPT=1         also run binaryen's wasm-opt -O3 (off: measured slower and larger gzipped; see build_wasm)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$ROOT"
CACHE=${SKINSCAN_CACHE:-$HOME/.cache/skinscan}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$CACHE/target}
export PATH="$HOME/.cargo/bin:$PATH"
WASM_TARGET=wasm32-unknown-unknown
ENGINES=${SKINSCAN_ENGINES:-chromium,firefox,webkit}
PKG=www/pkg

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'build.sh: error: %s\n' "$*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found. $2"; }
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "need root to run: $* (no sudo found)"; fi
}
sha256() { sha256sum "$1" | cut -d' ' -f1; }

# ---------------------------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------------------------
ensure_rust() {
  need cargo "Install Rust with rustup: https://rustup.rs"
  need rustup "The wasm32 target is added with rustup; install Rust with rustup: https://rustup.rs"
  if ! rustup target list --installed | grep -qx "$WASM_TARGET"; then
    say "adding the $WASM_TARGET target"
    rustup target add "$WASM_TARGET"
  fi
}

# wasm-bindgen's CLI must match the crate's version exactly, or the generated glue will not load.
ensure_wasm_bindgen() {
  local want have
  want=$(awk '$1 == "name" && $3 == "\"wasm-bindgen\"" { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock)
  [ -n "$want" ] || die "no wasm-bindgen in Cargo.lock: the crate's wasm dependencies are missing"
  have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
  if [ "$have" != "$want" ]; then
    say "installing wasm-bindgen-cli $want (was: ${have:-none}); about 6 minutes on 2 cores"
    # No --locked: its lockfile pins a webpki-roots version our registry mirror lacks.
    cargo install wasm-bindgen-cli --version "$want"
  fi
}

ensure_node() {
  need node "Install Node.js 20 or newer (Debian: apt-get install nodejs npm)."
  need npm "Install npm (Debian: apt-get install npm)."
  local stamp=node_modules/.skinscan-lock.sha256
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$(sha256 package-lock.json)" ]; then
    say "npm ci (playwright-core, binaryen, onnxruntime-web from package-lock.json)"
    # --ignore-scripts: no package needs an install script, and none may download anything.
    npm ci --ignore-scripts --no-audit --no-fund
    sha256 package-lock.json >"$stamp"
  fi
}

# Debian packages, installed in one apt-get call when any of them is missing. $@ = "command package" pairs.
ensure_debs() {
  local missing=() cmd pkg
  while [ $# -gt 1 ]; do
    cmd=$1 pkg=$2
    shift 2
    [ -x "$cmd" ] || command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return
  say "installing Debian's ${missing[*]}"
  need apt-get "Install the Debian packages ${missing[*]} (or point CHROMIUM / FIREFOX / WEBKIT_DRIVER at them)."
  as_root apt-get update
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
}

ensure_chromium() {
  export CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
  ensure_debs "$CHROMIUM" chromium
  [ -x "$CHROMIUM" ] || die "$CHROMIUM still missing after installing chromium"
}

# The browsers the page checks run in (issue 21): Chromium for the whole suite, Firefox ESR and
# WebKitGTK (WebKitWebDriver drives its MiniBrowser, which needs an X server: Xvfb) for the
# engine checks. $SKINSCAN_ENGINES picks some (default: chromium,firefox,webkit); one apt-get call.
ensure_browsers() {
  export CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
  export FIREFOX=${FIREFOX:-/usr/bin/firefox-esr}
  export WEBKIT_DRIVER=${WEBKIT_DRIVER:-/usr/bin/WebKitWebDriver}
  local want=("$CHROMIUM" chromium) e # the whole browser suite runs in Chromium, whatever the list
  for e in ${ENGINES//,/ }; do
    case "$e" in
      chromium) ;;
      firefox) want+=("$FIREFOX" firefox-esr) ;;
      webkit) want+=("$WEBKIT_DRIVER" webkit2gtk-driver xvfb-run xvfb) ;;
      *) die "SKINSCAN_ENGINES: unknown engine '$e' (chromium, firefox, webkit)" ;;
    esac
  done
  ensure_debs "${want[@]}"
}

# The training smoke tests' venv, outside the clone; reinstalled only when a pin is unmet.
ensure_venv() {
  VENV=${SKINSCAN_VENV:-$CACHE/venv}
  # The Rust tests (tests/quality.rs) run the venv's Python too: tell them where it is.
  export SKINSCAN_VENV=$VENV
  need python3 "Install Python 3.11 (Debian: apt-get install python3 python3-venv)."
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating the Python venv at $VENV"
    python3 -m venv "$VENV"
  fi
  if ! "$VENV/bin/python" - training/requirements.txt <<'PY'
import sys, re
from importlib.metadata import version, PackageNotFoundError
ok = True
for line in open(sys.argv[1]):
    line = line.split("#")[0].strip()
    if not line:
        continue
    m = re.fullmatch(r"([A-Za-z0-9_.\-\[\]]+)\s*==\s*([^\s;]+)", line)
    if not m:
        ok = False  # not a plain pin: let pip decide
        break
    name = re.sub(r"\[.*\]", "", m.group(1))
    try:
        if version(name) != m.group(2):
            ok = False
    except PackageNotFoundError:
        ok = False
sys.exit(0 if ok else 1)
PY
  then
    say "pip install -r training/requirements.txt into $VENV"
    "$VENV/bin/python" -m pip install --disable-pip-version-check -q -r training/requirements.txt
  fi
}

# ---------------------------------------------------------------------------------------------
# Build steps
# ---------------------------------------------------------------------------------------------

# The page's wasm, in two builds of the same code that share one JS glue (www/pkg/skinscan.js);
# skinscan.js picks one at runtime with WebAssembly.validate (relaxedSimd()):
#   skinscan_bg.wasm          +simd128: tract's wasm kernels need it; every current browser has it.
#   skinscan_relaxed_bg.wasm  +simd128,+relaxed-simd: tract's matrix kernels then use fused
#                             multiply-add (f32x4.relaxed_madd); ./build.sh bench measures the gain.
# Cargo profile `wasm` (Cargo.toml) size-optimises the crates off the hot path. $1 = 1 to run
# wasm-opt -O3 as well, 0 not to. Off by default: on these builds it took 5 minutes each, made the
# module smaller raw (10.5 -> 9.7 MB) but larger gzipped (2.71 -> 2.86 MB), and the CNN 6-25%
# slower in Chromium 148 (interleaved in one page, six comparisons; ./build.sh bench re-measures).
build_wasm() {
  local opt=$1
  ensure_rust
  ensure_wasm_bindgen
  ensure_node
  mkdir -p "$PKG"
  rm -f "$PKG/.source-sha256" "$PKG/.optimised" # the one-build layout's stamps
  # Each feature set keeps its own target dir: switching RUSTFLAGS would rebuild everything.
  build_wasm_variant skinscan_bg "+simd128" "$CARGO_TARGET_DIR" "$opt"
  build_wasm_variant skinscan_relaxed_bg "+simd128,+relaxed-simd" "$CARGO_TARGET_DIR/relaxed-simd" "$opt"
}

# $1 file name in www/pkg without .wasm, $2 target features, $3 cargo target dir, $4 wasm-opt 1/0.
build_wasm_variant() {
  local name=$1 features=$2 target_dir=$3 opt=$4 raw out src_sha stamp want
  say "cargo build --profile wasm --target $WASM_TARGET ($features)"
  RUSTFLAGS="-C target-feature=$features" \
    cargo build --profile wasm --target "$WASM_TARGET" --lib --target-dir "$target_dir"
  raw="$target_dir/$WASM_TARGET/wasm/skinscan.wasm"
  [ -f "$raw" ] || die "cargo produced no $raw"

  out="$CACHE/bindgen/$name"
  rm -rf "$out"
  # No name section: 2 MB of function names (0.5 MB gzipped) that only a profiler reads.
  wasm-bindgen --target web --no-typescript --remove-name-section --out-dir "$out" "$raw"
  if [ -f "$PKG/skinscan.js" ] && [ "$name" != skinscan_bg ]; then
    cmp -s "$out/skinscan.js" "$PKG/skinscan.js" ||
      die "wasm-bindgen wrote different JS glue for the $features build: the two builds must export the same API"
  else
    cp "$out/skinscan.js" "$PKG/"
  fi

  # This exact module, optimised or not as asked, is already in place: keep it.
  src_sha=$(sha256 "$out/skinscan_bg.wasm")
  stamp="$PKG/.$name.stamp"
  want="$src_sha $([ "$opt" = 1 ] && echo optimised || echo plain)"
  if [ -f "$PKG/$name.wasm" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    say "www/pkg/$name.wasm is up to date"
    return
  fi
  rm -f "$stamp"
  if [ "$opt" = 1 ]; then
    say "wasm-opt -O3 $name.wasm (binaryen from npm; takes a few minutes)"
    # The features rustc's wasm32 target emits by default, plus simd128 (and relaxed SIMD); binaryen must be told.
    node_modules/.bin/wasm-opt -O3 \
      --enable-simd --enable-relaxed-simd --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
      --enable-mutable-globals --enable-reference-types --enable-multivalue \
      "$out/skinscan_bg.wasm" -o "$PKG/$name.wasm"
  else
    cp "$out/skinscan_bg.wasm" "$PKG/$name.wasm"
  fi
  echo "$want" >"$stamp"
  report_size "$PKG/$name.wasm"
}

report_size() {
  local raw gz
  raw=$(stat -c %s "$1")
  gz=$(gzip -9 -c "$1" | wc -c)
  say "$(basename "$1"): $raw bytes raw, $gz bytes gzip -9"
}

# The page loads models from www/models/: the manifest plus the two default models it names.
# Copies, not links, so the folder deploys as is; each is checked against the manifest's SHA-256.
copy_models() {
  ensure_node
  say "copying the default models into www/models"
  rm -rf www/models
  mkdir -p www/models
  cp models/manifest.json www/models/
  local file want
  # The default models as the page picks them: www/choices.js's defaultModels().
  node --input-type=module -e '
    import { readFileSync } from "node:fs";
    import { defaultModels } from "./www/choices.js";
    try {
      const { image, tabular } = defaultModels(JSON.parse(readFileSync("models/manifest.json", "utf8")));
      for (const x of [image, tabular]) console.log(x.file + " " + x.sha256);
    } catch (err) { console.error(`models/manifest.json: ${err.message}`); process.exit(1); }
  ' | while read -r file want; do
    [ -f "models/$file" ] || die "models/$file (named by the manifest) is missing"
    [ "$(sha256 "models/$file")" = "$want" ] || die "models/$file does not match its SHA-256 in models/manifest.json"
    cp "models/$file" www/models/
  done
}

# Pages can only send the CSP as each page's <meta>: check those against the one policy first.
check_csp() {
  ensure_node
  node tools/csp.mjs www || die "a page's Content-Security-Policy differs from tools/csp.mjs (above)"
}

cmd_build() {
  check_csp
  build_wasm "${WASM_OPT:-0}"
  copy_models
  say "built: www/ is ready to serve as static files"
}

cmd_serve() {
  local port=${1:-${PORT:-8000}}
  cmd_build
  say "serving www/ (Ctrl-C to stop)"
  exec node tools/server.mjs --root www --port "$port"
}

cmd_test() {
  local samples=${SKINSCAN_SAMPLES:-$ROOT/../shared/data/samples}
  [ -d "$samples" ] || die "no sample images at $samples (set SKINSCAN_SAMPLES)"
  # Every tool first, so that a fresh machine fails (or installs) in the first minutes, not 15 in.
  ensure_rust
  ensure_wasm_bindgen
  ensure_node
  ensure_browsers
  ensure_venv

  say "cargo test (tier 1 and 2: unit and native integration tests)"
  cargo test
  # The browser tests compare the page with the native CLI, so build it (the same dev profile).
  cargo build --bin skinscan

  if [ -d training/tests ]; then
    say "training smoke tests (pytest)"
    "$VENV/bin/python" -m pytest -q training/tests
  fi

  say "browser tests"
  check_csp
  build_wasm 0
  copy_models
  SKINSCAN_BIN="$CARGO_TARGET_DIR/debug/skinscan" SKINSCAN_SAMPLES="$samples" CHROMIUM="$CHROMIUM" \
    node tests/e2e/run.mjs
  say "browser tests: a result to trust at a glance, on a phone viewport (issue 22)"
  SKINSCAN_BIN="$CARGO_TARGET_DIR/debug/skinscan" SKINSCAN_SAMPLES="$samples" CHROMIUM="$CHROMIUM" \
    node tests/e2e/trust.mjs
  say "browser tests: the feature check, each needed feature removed (issue 21)"
  CHROMIUM="$CHROMIUM" node tests/e2e/features.mjs
  say "the worker's streaming SHA-256 against node:crypto (issue 15)"
  node tests/e2e/sha256.mjs
  say "browser tests: quarter turns in parallel, loading progress (issue 15)"
  SKINSCAN_BIN="$CARGO_TARGET_DIR/debug/skinscan" SKINSCAN_SAMPLES="$samples" CHROMIUM="$CHROMIUM" \
    node tests/e2e/parallel.mjs
  say "browser tests: saved history (issue 14)"
  SKINSCAN_BIN="$CARGO_TARGET_DIR/debug/skinscan" SKINSCAN_SAMPLES="$samples" CHROMIUM="$CHROMIUM" \
    node tests/e2e/history.mjs
  # Firefox and WebKit (issue 21): load, the samples against the CLI, bad files, same origin,
  # history across a reload, encrypted export and import, offline. WebKit's MiniBrowser needs an
  # X server: Xvfb, started by xvfb-run for this one command.
  local others=() e
  for e in ${ENGINES//,/ }; do [ "$e" = chromium ] || others+=("$e"); done
  if [ ${#others[@]} -gt 0 ]; then
    say "browser tests in ${others[*]} (issue 21)"
    local run=()
    case " ${others[*]} " in *" webkit "*) run=(xvfb-run -a) ;; esac
    SKINSCAN_BIN="$CARGO_TARGET_DIR/debug/skinscan" SKINSCAN_SAMPLES="$samples" FIREFOX="$FIREFOX" \
      WEBKIT_DRIVER="$WEBKIT_DRIVER" "${run[@]}" node tests/e2e/engines.mjs "${others[@]}"
  fi
  say "all tests passed"
}

# The release build the page ships, the release CLI for the native figure, then bench/run.mjs.
cmd_bench() {
  local samples=${SKINSCAN_SAMPLES:-$ROOT/../shared/data/samples}
  [ -d "$samples" ] || die "no sample images at $samples (set SKINSCAN_SAMPLES)"
  ensure_chromium
  cmd_build
  say "cargo build --release --bin skinscan (the native reference)"
  cargo build --release --bin skinscan
  say "benchmark (several minutes: 2 x 20 cold starts, the interleaved runs, then 2 x 3 cold starts at 1.6 Mbit/s)"
  SKINSCAN_RELEASE_BIN="$CARGO_TARGET_DIR/release/skinscan" SKINSCAN_SAMPLES="$samples" CHROMIUM="$CHROMIUM" \
    node bench/run.mjs "$@"
}

case "${1:-build}" in
  build) cmd_build ;;
  serve) shift; cmd_serve "$@" ;;
  test) cmd_test ;;
  bench) shift; cmd_bench "$@" ;;
  -h|--help|help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' ;;
  *) die "unknown command '$1' (try ./build.sh --help)" ;;
esac
