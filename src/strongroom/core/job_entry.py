"""The entry point of a built-in job script inside its sandbox: read the hyperparameters, run, and
turn a refusal into the job's failure reason (``/opt/ml/output/failure``) and exit code 2."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from strongroom.core.errors import StrongroomError


def job_main(run: Callable[[dict[str, Any]], object]) -> int:
    config = Path(os.environ.get("SM_INPUT_CONFIG_DIR", "/opt/ml/input/config")) / "hyperparameters.json"
    hyper = json.loads(config.read_text()) if config.is_file() else {}
    try:
        run(hyper)
    except StrongroomError as exc:
        print(f"[strongroom] error: {exc.detail}", file=sys.stderr, flush=True)
        failure = Path(os.environ.get("SM_OUTPUT_DIR", "/opt/ml/output"))
        failure.mkdir(parents=True, exist_ok=True)
        (failure / "failure").write_text(exc.detail + "\n")
        return 2
    return 0
