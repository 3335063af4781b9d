"""The inference worker, run INSIDE an endpoint variant's sandbox (no network, non-root, no keys).

It listens on a Unix socket in a directory the platform bind-mounts, receives the model archive
over that socket (the platform decrypted it; it is written only to this sandbox's tmpfs scratch),
loads it from XGBoost's own UBJSON/JSON format (never pickle) through the safe archive reader, and
answers ``POST /invocations`` with one prediction per row. Bad input is answered 400 with a JSON
problem naming the row and the column; the worker keeps serving. A model whose runtime is
``script`` is the user's own ``inference.py`` from the archive instead (``ScriptModel``), run in
this same sandbox.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import socketserver
import sys
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

MODEL_MEMBER = "xgboost-model"
SCRATCH = Path("/opt/ml/scratch")


class BadInput(Exception):
    def __init__(self, detail: str, row: int | None = None, column: int | None = None) -> None:
        super().__init__(detail)
        self.detail, self.row, self.column = detail, row, column


def _cell(text: str, row: int, column: int) -> float:
    try:
        value = float(text)
    except ValueError:
        raise BadInput(f"row {row}, column {column}: {text[:40]!r} is not a number", row, column) from None
    if not math.isfinite(value):
        raise BadInput(f"row {row}, column {column}: {text[:40]!r} is not a finite number", row, column)
    return value


def _check_width(values: list[Any], row: int, width: int) -> None:
    if len(values) != width:
        raise BadInput(
            f"row {row} has {len(values)} columns; the model takes {width} features (no header, no label)",
            row,
            min(len(values), width) + 1,
        )


def parse_csv(body: bytes, width: int | None) -> list[list[float]]:
    """Headerless CSV rows in the model's feature order (``width`` None: as wide as the first row)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInput(f"the body is not UTF-8 text (byte {exc.start})") from None
    rows: list[list[float]] = []
    reader = csv.reader(io.StringIO(text), strict=True)
    try:
        for number, record in enumerate(reader, start=1):
            if not record or (len(record) == 1 and not record[0].strip()):
                continue
            width = len(record) if width is None else width
            _check_width(record, number, width)
            rows.append([_cell(cell.strip(), number, col) for col, cell in enumerate(record, start=1)])
    except csv.Error as exc:
        row = max(reader.line_num, 1)
        raise BadInput(f"row {row}: malformed CSV ({exc}); send headerless rows of numbers", row) from None
    if not rows:
        raise BadInput("the body holds no rows")
    return rows


def parse_json(body: bytes, width: int | None) -> list[list[float]]:
    """``{"instances": [[...], ...]}``, ``[[...], ...]`` or one row ``[...]``."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadInput(f"the body is not valid JSON: {exc}") from None
    if isinstance(data, dict):
        data = data.get("instances")
    if not isinstance(data, list) or not data:
        raise BadInput('send {"instances": [[f1, f2, ...], ...]} or a list of rows')
    if not isinstance(data[0], list):
        data = [data]
    rows: list[list[float]] = []
    for number, record in enumerate(data, start=1):
        if not isinstance(record, list):
            raise BadInput(f"row {number} is not a list of numbers", number)
        width = len(record) if width is None else width
        _check_width(record, number, width)
        row = []
        for col, cell in enumerate(record, start=1):
            if isinstance(cell, bool) or not isinstance(cell, int | float):
                raise BadInput(f"row {number}, column {col}: {str(cell)[:40]!r} is not a number", number, col)
            row.append(_cell(repr(cell), number, col))
        rows.append(row)
    return rows


class Model:
    def __init__(self, archive: Path) -> None:
        import xgboost as xgb

        from strongroom.core.archive import ArchiveLimits, read_member

        raw = read_member(archive, MODEL_MEMBER, ArchiveLimits(max_members=16, max_total_bytes=1024**3))
        if not raw.startswith(b"{"):
            raise ValueError(f"{MODEL_MEMBER} is not an XGBoost UBJSON/JSON model (pickled models are refused)")
        self.booster = xgb.Booster()
        self.booster.load_model(bytearray(raw))
        # One worker process per core scales; OpenMP threads inside each would only spin against each other.
        self.booster.set_param({"nthread": 1})
        self.width = self.booster.num_features()
        self._xgb = xgb

    def _matrix(self, rows: list[list[float]]) -> Any:
        import numpy as np

        # A booster trained on named columns (a DataFrame, a CSV header) checks the names of what it
        # scores: the rows come in the model's feature order, so they carry the model's own names.
        return self._xgb.DMatrix(
            np.asarray(rows, dtype=np.float32),
            feature_names=self.booster.feature_names,
            feature_types=self.booster.feature_types,
        )

    def predict(self, rows: list[list[float]]) -> list[float]:
        import numpy as np

        # inplace_predict, not a DMatrix: building one starts an OpenMP team over every core, whose
        # spin-waits cost a single row ~20 ms instead of ~0.2 ms on a busy machine.
        matrix = np.ascontiguousarray(rows, dtype=np.float32)
        return [float(p) for p in self.booster.inplace_predict(matrix).reshape(len(rows), -1)[:, 0]]

    def explain(self, rows: list[list[float]]) -> dict[str, Any]:
        """Exact per-feature SHAP contributions (XGBoost's TreeSHAP, ``pred_contribs=True``), in the
        margin (log-odds for ``binary:logistic``): ``sum(contributions) + bias`` is the margin."""
        matrix = self._matrix(rows)
        scores = self.booster.predict(matrix).reshape(len(rows), -1)[:, 0]
        contribs = self.booster.predict(matrix, pred_contribs=True)
        if contribs.ndim == 3:  # one set per class: the first, as the score
            contribs = contribs[:, 0, :]
        names = self.booster.feature_names or [f"f{i}" for i in range(self.width)]
        return {
            "feature_names": list(names),
            "predictions": [
                {"score": float(s), "contributions": [float(c) for c in row[:-1]], "bias": float(row[-1])}
                for s, row in zip(scores, contribs, strict=True)
            ],
        }


class ScriptModel:
    """A user's own inference script, run here, in the same sandbox as the built-in runtime.

    The archive holds ``inference.py`` (at its top or under ``code/``) beside the model's files. It
    is extracted (with the safe archive reader) into this sandbox's tmpfs and imported; its contract:

    - ``model_fn(model_dir: str) -> object`` (optional): load the model from the extracted files;
    - ``predict_fn(rows: list[list[float]], model) -> sequence of numbers``: one score per row;
    - ``num_features: int`` (optional): the width every row must have (else the first row's).

    The platform itself never loads anything of it; the script runs with no network, as uid 1000.
    """

    def __init__(self, archive: Path) -> None:
        import importlib.util

        from strongroom.core.archive import ArchiveLimits, extract_archive

        model_dir = SCRATCH / "model"
        extract_archive(archive, model_dir, ArchiveLimits(max_members=1000, max_total_bytes=1024**3))
        script = next(
            (p for p in (model_dir / "inference.py", model_dir / "code" / "inference.py") if p.is_file()), None
        )
        if script is None:
            raise ValueError("the archive has no inference.py (at its top or under code/)")
        sys.path.insert(0, str(script.parent))
        spec = importlib.util.spec_from_file_location("inference", script)
        if spec is None or spec.loader is None:
            raise ValueError(f"{script.name} cannot be imported")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        predict_fn = getattr(module, "predict_fn", None)
        if not callable(predict_fn):
            raise ValueError("inference.py defines no predict_fn(rows, model)")
        model_fn = getattr(module, "model_fn", None)
        self.model = model_fn(str(model_dir)) if callable(model_fn) else None
        self.predict_fn = predict_fn
        width = getattr(module, "num_features", None)
        self.width: int | None = width if isinstance(width, int) and width > 0 else None

    def predict(self, rows: list[list[float]]) -> list[float]:
        scores = self.predict_fn(rows, self.model)
        values = [float(s) for s in (scores.tolist() if hasattr(scores, "tolist") else scores)]
        if len(values) != len(rows):
            raise ValueError(f"predict_fn returned {len(values)} scores for {len(rows)} rows")
        return values

    def explain(self, rows: list[list[float]]) -> dict[str, Any]:
        raise BadInput("explain=true is answered by the built-in xgboost runtime; this model runs its own inference.py")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _problem(self, status: int, detail: str, row: int | None = None, column: int | None = None) -> None:
        body = json.dumps({"detail": detail, "row": row, "column": column}).encode()
        self._send(status, body, "application/json")

    def do_GET(self) -> None:
        ready = self.server.model is not None
        self._send(200 if ready else 503, json.dumps({"ready": ready}).encode(), "application/json")

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path != "/model" or self.server.model is not None:
            self._problem(409, "the model is loaded once, when the worker starts")
            return
        SCRATCH.mkdir(parents=True, exist_ok=True)
        path = SCRATCH / "model.tar.gz"  # tmpfs: the decrypted model never reaches a disk
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(body)
        try:
            runtime = self.headers.get("X-Strongroom-Runtime", "xgboost")
            self.server.model = ScriptModel(path) if runtime == "script" else Model(path)
        except Exception as exc:
            self._problem(422, f"the model could not be loaded: {exc}")
            return
        finally:
            path.unlink()
        self._send(200, json.dumps({"num_features": self.server.model.width}).encode(), "application/json")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        model = self.server.model
        if model is None:
            self._problem(503, "the model is not loaded yet")
            return
        kind = self.headers.get("X-Strongroom-Kind", "csv")
        try:
            rows = parse_json(body, model.width) if kind == "json" else parse_csv(body, model.width)
            explain = self.headers.get("X-Strongroom-Explain")
            if explain == "json":
                self._send(200, json.dumps(model.explain(rows)).encode(), "application/json")
                return
            if explain == "csv":  # one line per row: score, the contributions in feature order, bias
                lines = [
                    ",".join(repr(v) for v in (p["score"], *p["contributions"], p["bias"]))
                    for p in model.explain(rows)["predictions"]
                ]
                self._send(200, "\n".join(lines).encode(), "text/csv; charset=utf-8")
                return
            scores = model.predict(rows)
        except BadInput as bad:
            self._problem(400, bad.detail, bad.row, bad.column)
            return
        except Exception as exc:  # the user's predict_fn failed: the worker keeps serving
            self._problem(500, f"the model failed on this request: {type(exc).__name__}: {str(exc)[:300]}")
            return
        if kind == "json":
            self._send(200, json.dumps({"predictions": [{"score": s} for s in scores]}).encode(), "application/json")
        else:
            self._send(200, "\n".join(repr(s) for s in scores).encode(), "text/csv; charset=utf-8")


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    request_queue_size = 256  # the proxy opens a connection per concurrent request
    model: Model | ScriptModel | None = None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--socket", required=True)
    args = parser.parse_args(argv)
    os.umask(0o077)
    with Server(args.socket, Handler) as server:
        print("worker listening", flush=True)
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
