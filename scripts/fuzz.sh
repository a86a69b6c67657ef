#!/usr/bin/env bash
# Coverage-guided fuzzing of every decoder of network and disk data (fuzz/, cargo-fuzz with
# libFuzzer): runs each target for SECONDS (default 60), starting from the real messages in
# fuzz/seeds/ plus whatever earlier runs added to fuzz/corpus/. Needs a nightly toolchain
# (`rustup toolchain install nightly`); installs cargo-fuzz if missing. Not part of CI, which
# runs the stable, bounded equivalent (crates/lightbus/tests/decode_fuzz.rs).
#
# A crash leaves its input in fuzz/artifacts/TARGET/; reproduce it with
# `cargo +nightly fuzz run TARGET fuzz/artifacts/TARGET/crash-…`, then add it as a case of
# crates/lightbus/tests/decode_fuzz.rs (or its proptest-regressions file) with the fix.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
targets=(rpc_blob result_blob event_fields schema_json config)

command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
cd fuzz
failed=()
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target"
  cp -n "seeds/$target/"* "corpus/$target/" 2>/dev/null || true
  echo "== $target: ${seconds}s" >&2
  if ! cargo +nightly fuzz run -s none -O "$target" "corpus/$target" -- \
      -max_total_time="$seconds" -max_len=65536 -print_final_stats=1 2>"/tmp/fuzz-$target.log"; then
    failed+=("$target")
    tail -n 30 "/tmp/fuzz-$target.log" >&2
  fi
  grep -E '^stat::(number_of_executed_units|new_units_added)|^#[0-9]+.*DONE' "/tmp/fuzz-$target.log" >&2 || true
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "crashes in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
  exit 1
fi
echo "no crash in ${#targets[@]} targets, ${seconds}s each" >&2
