#!/usr/bin/env bash
# Builds the code package of the Function Compute function (deploy/aliyun/s.yaml's `code`): the orchestrator
# package and the data contracts beside every package they import, as wheels for FC's python3.12 runtime on
# x86_64 Linux (installed at the package's root, which the runtime puts on sys.path). Left out: what only the
# workbench's pages or the large-batch runners need (left-out.txt).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=build/aliyun-fc
rm -rf "$out"
mkdir -p "$out"
mapfile -t left_out < <(grep -v -E '^(#|$)' deploy/aliyun/left-out.txt)
while IFS= read -r line; do
	name=${line%%==*}
	[[ -z $name || $name == \#* ]] && continue
	for pattern in "${left_out[@]}"; do
		# shellcheck disable=SC2053 # the pattern is a glob on purpose (azure-*)
		[[ ${name,,} == $pattern ]] && continue 2
	done
	printf '%s\n' "$line"
done <requirements.txt >"$out/requirements.txt"
# FC's python3.12 runtime runs on Debian 12 (glibc 2.36): manylinux_2_28 wheels and older ones fit.
"${PYTHON:-python3}" -m pip install --quiet --target "$out" --platform manylinux_2_28_x86_64 \
	--platform manylinux2014_x86_64 --implementation cp --python-version 3.12 --only-binary=:all: \
	-r "$out/requirements.txt"
cp -r orchestrator contracts "$out/"
find "$out" -name __pycache__ -prune -exec rm -rf {} +
du -sh "$out"
