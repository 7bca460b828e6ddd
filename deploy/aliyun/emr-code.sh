#!/usr/bin/env bash
# Puts the large-batch notebook where EMR Serverless Spark runs it: builds, in build/aliyun-emr (or $OUT),
# clean_large_batch.py (the notebook, the job run's entry point) and orchestrator.zip (the orchestrator
# package and the data contracts, which the run gets on --py-files), then, unless --build-only is given,
# copies both into the OSS folder ORCHESTRATOR_ALIYUN_EMR_CODE (oss://bucket/folder) with Alibaba's ossutil,
# configured beforehand (`ossutil config`) with a key that may write there. The runner starts every run from
# that folder (orchestrator/runners/emr_serverless.py); the packages the notebook imports (pyarrow, pandas,
# ...) come from the workspace's runtime environment, named in ORCHESTRATOR_ALIYUN_EMR_SUBMIT_PARAMETERS.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${OUT:-build/aliyun-emr}
rm -rf "$out"
mkdir -p "$out"
cp notebooks/clean_large_batch.py "$out/clean_large_batch.py"
"${PYTHON:-python3}" - "$out/orchestrator.zip" <<'PY'
import sys
import zipfile
from pathlib import Path

with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as archive:
    for top in ("orchestrator", "contracts"):
        for path in sorted(Path(top).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                archive.write(path, path.as_posix())
PY
ls -l "$out"
[[ ${1:-} == --build-only ]] && exit 0
target=${ORCHESTRATOR_ALIYUN_EMR_CODE:?set ORCHESTRATOR_ALIYUN_EMR_CODE to the OSS folder, oss://bucket/folder}
target=${target%/}
for file in clean_large_batch.py orchestrator.zip; do
	ossutil cp -f "$out/$file" "$target/$file"
done
