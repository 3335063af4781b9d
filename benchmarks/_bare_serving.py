"""The floor for benchmarks/serving.py: FastAPI + uvicorn + the same booster over TLS, no auth,
no capture, the same single-threaded predict call as the Strongroom worker.
Usage: _bare_serving.py MODEL.ubj CERT KEY PORT"""

from __future__ import annotations

import sys

import numpy as np
import uvicorn
import xgboost as xgb
from fastapi import FastAPI, Request, Response

booster = xgb.Booster()
booster.load_model(sys.argv[1])
booster.set_param({"nthread": 1})  # as the Strongroom worker: one row needs no thread team
app = FastAPI()


@app.post("/invocations")
async def invocations(request: Request) -> Response:
    body = (await request.body()).decode()
    rows = np.array([[float(v) for v in line.split(",")] for line in body.splitlines() if line], dtype=np.float32)
    scores = booster.inplace_predict(rows)  # the Strongroom worker's call (no DMatrix, no OpenMP team)
    return Response("\n".join(repr(float(s)) for s in scores), media_type="text/csv")


if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[4]),
        ssl_certfile=sys.argv[2],
        ssl_keyfile=sys.argv[3],
        log_level="warning",
    )
