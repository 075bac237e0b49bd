#!/bin/sh
# The hostile-input tests against the release build (issue 16). BalconyCore compiles with
# -Ounchecked in release, which removes Swift's bounds and overflow checks: a missing explicit
# check that debug tests would catch as a trap becomes silent memory corruption there. So the
# tests that feed the readers, the sampler and the thread pool crafted input run again here,
# against the code users run. Usage: scripts/release_hostile_tests.sh [extra swift test args]
set -eu
cd "$(dirname "$0")/.."

# Suites whose inputs are hostile or degenerate: overflowing sizes, nested and oversized GGUF
# metadata, truncated and malformed model/tokenizer files, non-finite logits, pool races, full disks.
FILTER='HostileSizeTests|SamplerRobustnessTests|ThreadPoolStressTests|TrainingMetricsLogTests|SafetensorsTests|GGUFLoaderTests|ModelLoaderTests|TokenizerErrorTests|HuggingFaceLoaderTests'

# Release build with testable imports (the suites use @testable import BalconyCore, which adds
# -enable-testing: internal symbols stay visible, the -Ounchecked of Package.swift still applies).
swift test -c release --enable-testable-imports --filter "$FILTER" "$@"
