#!/usr/bin/env bash
# bbpe built with the `portable` feature (the plain Rust code paths that
# processors other than x86-64 take), as a copy of the package in DIR
# (default build/portable) for benches/encode.py's bbpe-portable engine. Its
# own target directory keeps target/release's extension as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-build/portable}"
cargo build --release --features python,portable --lib --target-dir target/portable
rm -rf "$out/bbpe"
mkdir -p "$out"
cp -r python/bbpe "$out/bbpe"
# The name this interpreter gives extension modules (bbpe is built for one
# CPython version), so it replaces any copy of the regular build.
suffix=$(python -c "import sysconfig; print(sysconfig.get_config_var('EXT_SUFFIX'))")
rm -f "$out"/bbpe/_core*.so
cp target/portable/release/libbbpe.so "$out/bbpe/_core$suffix"
echo "built $out/bbpe"
