"""Shared test helpers for admission webhooks: a throw-away CA, webhook servers with scripted
behaviours, and AdmissionReview replies. Used by test_admission and test_apiserver."""

import base64
import datetime
import ipaddress
import json
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

JsonObject = dict[str, Any]
Reply = tuple[int, bytes]
Behaviour = Callable[[JsonObject], "JsonObject | Reply"]


# --- Certificates


class Authority:
    """A throw-away CA that issues server certificates."""

    def __init__(self, name: str) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )

    @property
    def bundle(self) -> str:
        """The caBundle of a webhook configuration: base64 of the PEM certificate."""
        return base64.b64encode(self.cert.public_bytes(serialization.Encoding.PEM)).decode()

    def issue(self, directory: Path, dns_names: list[str], ips: list[str]) -> tuple[Path, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        names: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
        names.extend(x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_names[0])]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )
        cert_path = directory / "cert.pem"
        key_path = directory / "key.pem"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        return cert_path, key_path


# --- Webhook servers


class Call:
    """One review a webhook server received."""

    def __init__(self, path: str, query: str, host: str, review: JsonObject) -> None:
        self.path = path
        self.query = query
        self.host = host
        self.review = review

    @property
    def request(self) -> JsonObject:
        request: JsonObject = self.review["request"]
        return request


class WebhookServer:
    """A threaded HTTP(S) server whose paths answer with test-installed behaviours."""

    def __init__(self, context: ssl.SSLContext | None) -> None:
        self.behaviours: dict[str, Behaviour] = {}
        self.calls: list[Call] = []
        self.lock = threading.Lock()
        self.httpd = _Listener(("127.0.0.1", 0), _Handler, self)
        if context is not None:
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = int(self.httpd.server_address[1])
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def reset(self) -> None:
        with self.lock:
            self.behaviours.clear()
            self.calls.clear()

    def url(self, path: str) -> str:
        scheme = "https" if isinstance(self.httpd.socket, ssl.SSLSocket) else "http"
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def paths(self) -> list[str]:
        with self.lock:
            return [call.path for call in self.calls]

    def record(self, call: Call) -> None:
        with self.lock:
            self.calls.append(call)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _Listener(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], state: WebhookServer
    ) -> None:
        self.state = state
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet: clients that time out leave broken pipes behind on purpose."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        """Quiet."""

    def do_POST(self) -> None:
        server = self.server
        assert isinstance(server, _Listener)
        state = server.state
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        parts = urllib.parse.urlsplit(self.path)
        review = json.loads(body)
        state.record(Call(parts.path, parts.query, self.headers.get("Host", ""), review))
        with state.lock:
            behaviour = state.behaviours.get(parts.path)
        result: JsonObject | Reply = (
            behaviour(review) if behaviour is not None else (404, b"404 page not found\n")
        )
        if isinstance(result, tuple):
            status, data = result
            content_type = "text/plain"
        else:
            status, data = 200, json.dumps(result).encode()
            content_type = "application/json"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


# --- Replies


def respond(review: JsonObject, **fields: Any) -> JsonObject:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": review["request"]["uid"], **fields},
    }


def encode_patch(operations: list[JsonObject]) -> str:
    return base64.b64encode(json.dumps(operations).encode()).decode()


def allow(review: JsonObject) -> JsonObject:
    return respond(review, allowed=True)


def patching(operations: list[JsonObject], **fields: Any) -> Behaviour:
    def behaviour(review: JsonObject) -> JsonObject:
        return respond(review, allowed=True, patchType="JSONPatch", patch=encode_patch(operations), **fields)

    return behaviour


def labelling(key: str) -> Behaviour:
    """Sets label key=yes (an unchanged object when it is already set)."""
    return patching([{"op": "add", "path": f"/metadata/labels/{key}", "value": "yes"}])


def denying(status: JsonObject | None, **fields: Any) -> Behaviour:
    def behaviour(review: JsonObject) -> JsonObject:
        if status is None:
            return respond(review, allowed=False, **fields)
        return respond(review, allowed=False, status=status, **fields)

    return behaviour


def sleeping(seconds: float, then: Behaviour = allow) -> Behaviour:
    def behaviour(review: JsonObject) -> JsonObject | Reply:
        time.sleep(seconds)
        return then(review)

    return behaviour
