"""The ceiling of the stack: an allow-all AdmissionReview endpoint under `serve`'s gunicorn/TLS.

Same gunicorn settings, TLS context and worker model as `guardrail serve` (through
`webhook.server.gunicorn_options`), and the least work any webhook must do: read the body,
decode it, answer `allowed: true` for its uid with the same JSON library.

    python bench/bare_app.py --cert-dir DIR --bind 127.0.0.1:PORT --workers N --threads N
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import orjson
from flask import Flask, Response, request

from webhook.certs import TLS_CERT, TLS_KEY
from webhook.server import ReloadingTLS, _gunicorn_application, gunicorn_options


def create_app() -> Flask:
    app = Flask("bare", static_folder=None)

    @app.post("/validate")
    def validate() -> Response:
        review = orjson.loads(request.get_data())
        uid = review["request"]["uid"]
        out = {
            "apiVersion": review.get("apiVersion", "admission.k8s.io/v1"),
            "kind": "AdmissionReview",
            "response": {"uid": uid, "allowed": True},
        }
        return Response(orjson.dumps(out), 200, mimetype="application/json")

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cert-dir", required=True, type=Path)
    parser.add_argument("--bind", required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    tls = ReloadingTLS(args.cert_dir / TLS_CERT, args.cert_dir / TLS_KEY)
    options: dict[str, Any] = gunicorn_options(
        bind=args.bind,
        workers=args.workers,
        threads=args.threads,
        cert_dir=args.cert_dir,
        tls=tls,
    )
    options["proc_name"] = "guardrail-bench-bare"
    _gunicorn_application(options, create_app).run()


if __name__ == "__main__":
    main()
