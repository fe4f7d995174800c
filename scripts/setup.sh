#!/usr/bin/env bash
# Installs what building and testing Deferral needs, skipping whatever is already there.
#   scripts/setup.sh build   the wasm target, cargo-leptos, wasm-bindgen-cli, binaryen
#   scripts/setup.sh test    the above, plus Chromium, the Playwright packages and PostgreSQL
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-build}"

say() { printf '\033[1msetup:\033[0m %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_install() {
  say "installing $* (apt)"
  as_root apt-get install -y "$@" >/dev/null 2>&1 || { as_root apt-get update >/dev/null && as_root apt-get install -y "$@" >/dev/null; }
}

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if [ "$(cargo leptos --version 2>/dev/null || true)" != "cargo-leptos 0.3.10" ]; then
  say "installing cargo-leptos 0.3.10 (about 17 minutes on 2 cores, once)"
  cargo install cargo-leptos --version 0.3.10 --locked --features no_downloads
fi

# wasm-bindgen-cli must match the wasm-bindgen in Cargo.lock exactly.
wbg=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if [ "$(wasm-bindgen --version 2>/dev/null || true)" != "wasm-bindgen $wbg" ]; then
  say "installing wasm-bindgen-cli $wbg"
  cargo install wasm-bindgen-cli --version "$wbg" --locked
fi

command -v wasm-opt >/dev/null || apt_install binaryen

if [ "$what" = test ]; then
  command -v chromium >/dev/null || apt_install chromium
  if [ ! -d end2end/node_modules/@playwright/test ]; then
    say "installing the Playwright packages (no browser download: Debian's Chromium is used)"
    (cd end2end && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
  fi
  if [ ! -d tests/interop/node_modules/stripe ]; then
    say "installing Stripe's Node library for the signature interoperability test"
    (cd tests/interop && npm ci --no-audit --no-fund)
  fi
  if ! command -v pg_ctlcluster >/dev/null; then
    apt_install postgresql
  fi
  if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    say "starting PostgreSQL"
    as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
  fi
fi
