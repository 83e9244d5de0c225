"""A real RFC 3161 time-stamp authority for the tests: its own root CA and TSA certificate
(made with ``cryptography``), and ``openssl ts -reply`` behind a loopback HTTP server.

Each instance is unrelated to every other: a token from one does not chain to another's CA.
"""

from __future__ import annotations

import datetime
import http.server
import subprocess
import tempfile
import threading
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from rfc3161_client import HashAlgorithm, TimestampRequestBuilder, decode_timestamp_response

QUERY_TYPE = "application/timestamp-query"
REPLY_TYPE = "application/timestamp-reply"
OPENSSL_SECONDS = 10

CONFIG = """\
[ tsa ]
default_tsa = tsa_config

[ tsa_config ]
dir = {folder}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.pem
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.3.6.1.4.1.55555.3161.1
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = no
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


class LocalTsa:
    """A CA, a TSA certificate it signs (critical extendedKeyUsage timeStamping) and an HTTP
    server answering ``POST`` time-stamp queries with ``openssl ts -reply``, on a free
    loopback port (kept across ``stop`` and ``start``, to test a TSA that is down).

    ``url``, ``ca_pem`` (bytes), ``ca_file`` (Path), ``tsa_cert_pem`` (bytes)."""

    def __init__(self, folder: Path, name: str = "Test TSA"):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.ca_pem, self.tsa_cert_pem = self._write_certificates()
        self.ca_file = self.folder / "ca.pem"
        self.config_file = self.folder / "openssl.cnf"
        self.config_file.write_text(CONFIG.format(folder=self.folder))
        (self.folder / "serial").write_text("01\n")
        self._lock = threading.Lock()
        self._server = self._new_server(0)
        self.port = self._server.server_port
        self.url = f"http://127.0.0.1:{self.port}/tsr"
        self._thread = None
        self.start()

    def _write_certificates(self) -> tuple[bytes, bytes]:
        ca_key, tsa_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(
            ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{self.name} Root CA")])
        ca = (certificate(ca_name, ca_name, ca_key.public_key(), ca_key)
              .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
              .add_extension(key_usage(cert_sign=True), critical=True)
              .sign(ca_key, hashes.SHA256()))
        tsa_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self.name)])
        tsa = (certificate(tsa_name, ca_name, tsa_key.public_key(), ca_key)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(key_usage(cert_sign=False), critical=True)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]),
                              critical=True)
               .sign(ca_key, hashes.SHA256()))
        ca_pem, tsa_pem = (c.public_bytes(serialization.Encoding.PEM) for c in (ca, tsa))
        (self.folder / "ca.pem").write_bytes(ca_pem)
        (self.folder / "tsa.pem").write_bytes(tsa_pem)
        (self.folder / "tsa.key").write_bytes(tsa_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        return ca_pem, tsa_pem

    def reply(self, query: bytes) -> bytes:
        """``openssl ts -reply`` to ``query`` (DER); one at a time, as it updates the serial."""
        with self._lock, tempfile.TemporaryDirectory(dir=self.folder) as scratch:
            query_file, reply_file = Path(scratch) / "query.tsq", Path(scratch) / "reply.tsr"
            query_file.write_bytes(query)
            subprocess.run(["openssl", "ts", "-reply", "-config", str(self.config_file),
                            "-queryfile", str(query_file), "-out", str(reply_file)],
                           check=True, capture_output=True, timeout=OPENSSL_SECONDS)
            return reply_file.read_bytes()

    def token(self, root: bytes, *, algorithm: HashAlgorithm = HashAlgorithm.SHA256,
                  cert_request: bool = True) -> bytes:
        """A DER ``TimeStampToken`` over ``root`` straight from openssl (no HTTP)."""
        request = (TimestampRequestBuilder().data(root).hash_algorithm(algorithm)
                   .cert_request(cert_request=cert_request).build())
        return decode_timestamp_response(self.reply(request.as_bytes())).time_stamp_token()

    def _new_server(self, port: int) -> http.server.ThreadingHTTPServer:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        server.daemon_threads = True
        return server

    def start(self) -> None:
        """Serve (again, on the same port)."""
        if self._thread is not None:
            return
        if self._server is None:
            self._server = self._new_server(self.port)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop answering: the port is closed, a client's connection is refused."""
        if self._thread is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
        self._server, self._thread = None, None


def certificate(subject: x509.Name, issuer: x509.Name, public_key, signing_key
                ) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
            .public_key(public_key).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key),
                           critical=False))


def key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=not cert_sign, content_commitment=not cert_sign,
                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                         key_cert_sign=cert_sign, crl_sign=cert_sign, encipher_only=False,
                         decipher_only=False)


def _handler(tsa: LocalTsa) -> type[http.server.BaseHTTPRequestHandler]:
    def answer(query: bytes, content_type: str | None) -> tuple[int, str, bytes]:
        if content_type != QUERY_TYPE:
            return 415, "text/plain", b"not a time-stamp query"
        try:
            return 200, REPLY_TYPE, tsa.reply(query)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            return 400, "text/plain", b"openssl ts -reply failed"

    return answering_with(answer)


def answering_with(answer) -> type[http.server.BaseHTTPRequestHandler]:
    """An ``http.server`` handler whose ``POST`` answers ``answer(body, content type)``:
    (HTTP status, content type, body)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            query = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            status, content_type, body = answer(query, self.headers.get("Content-Type"))
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    return Handler
