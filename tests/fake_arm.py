"""A local Azure Resource Manager serving the Data Factory pipeline and run endpoints over TLS (throw-away
certificate)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from azure.core.credentials import AccessToken
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from orchestrator.runners import CANCELLED, FAILED, RUNNING, SUCCEEDED
from tests.fake_cluster import LocalCluster
from tests.fake_http import RecordedRequest, RecordingServer

API_VERSION = "2018-06-01"


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 that is also its own CA; returns (cert, key) PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "arm.pem", folder / "arm.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


class StaticToken:
    """A TokenCredential that hands out one fixed bearer token and remembers the scopes it was asked for."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(self.token, int(time.time()) + 3600)


class FakeDataFactory(RecordingServer):
    """One factory's pipelines; each run GET answers the next scripted status (the last one repeats)."""

    def __init__(
        self,
        cert: Path,
        key: Path,
        token: str,
        factory_path: str,
        pipelines: set[str],
        cluster: LocalCluster | None = None,
    ) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        super().__init__(self._answer, ssl_context=context)
        self.token = token
        self.factory_path = factory_path
        self.pipelines = pipelines
        self.force_status: int | None = None  # 401 or 403 for every call
        self.statuses: list[tuple[str, str]] = [("Queued", "")]  # (status, message)
        self.cluster = cluster  # set: a run's notebook activity runs for real, with the run's parameters
        self._reads: dict[str, int] = {}
        self._cancelled: set[str] = set()
        self._runs_lock = threading.Lock()

    def _answer(self, request: RecordedRequest) -> tuple[int, Any]:
        if self.force_status == 403:
            return 403, _error(
                "AuthorizationFailed", "The client does not have authorization to perform action."
            )
        if self.force_status == 401 or request.headers.get("authorization") != f"Bearer {self.token}":
            return 401, _error("InvalidAuthenticationToken", "The access token is invalid.")
        if request.query.get("api-version") != [API_VERSION] or not request.path.startswith(
            self.factory_path
        ):
            return 404, _error("NotFound", f"No route for {request.path}")
        parts = request.path[len(self.factory_path) :].strip("/").split("/")
        match request.method, parts:
            case "POST", ["pipelines", pipeline, "createRun"]:
                if pipeline not in self.pipelines:
                    return 404, _error("PipelineNotFound", f"Entity {pipeline} not found")
                run_id = str(uuid.uuid4())
                with self._runs_lock:
                    self._reads[run_id] = 0
                if self.cluster is not None:
                    self.cluster.start(run_id, request.body)
                return 200, {"runId": run_id}
            case "GET", ["pipelines", pipeline]:
                if pipeline not in self.pipelines:
                    return 404, _error("ResourceNotFound", f"Entity {pipeline} not found")
                return 200, {
                    "id": f"{self.factory_path}/pipelines/{pipeline}",
                    "name": pipeline,
                    "type": "Microsoft.DataFactory/factories/pipelines",
                    "properties": {"activities": []},
                }
            case "GET", ["pipelineruns", run_id]:
                return self._get(run_id)
            case "POST", ["pipelineruns", run_id, "cancel"]:
                if run_id not in self._reads:
                    return 404, _error("PipelineRunNotFound", f"Pipeline run {run_id} not found")
                self._cancelled.add(run_id)
                if self.cluster is not None and run_id in self.cluster:
                    self.cluster.cancel(run_id)
                return 200, None
        return 404, _error("NotFound", f"No route for {request.method} {request.path}")

    def _get(self, run_id: str) -> tuple[int, Any]:
        with self._runs_lock:
            if run_id not in self._reads:
                return 404, _error("PipelineRunNotFound", f"Pipeline run {run_id} not found")
            step = min(self._reads[run_id], len(self.statuses) - 1)
            self._reads[run_id] += 1
        status, message = self.statuses[step]
        if self.cluster is not None and run_id in self.cluster:
            ran = self.cluster.status(run_id)
            names = {RUNNING: "InProgress", SUCCEEDED: "Succeeded", FAILED: "Failed", CANCELLED: "Cancelled"}
            status, message = names[ran.state], ran.message
        if run_id in self._cancelled:
            status, message = "Cancelled", ""
        return 200, {"runId": run_id, "status": status, "message": message, "isLatest": True}


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}
