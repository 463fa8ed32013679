"""Test certificates made with openssl, and what a TLS client sees of a server."""

from __future__ import annotations

import base64
import hashlib
import socket
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path


def _openssl(*args: str) -> bytes:
    return subprocess.run(["openssl", *args], check=True, capture_output=True).stdout


@dataclass
class Identity:
    """A certificate and its key (PEM files), and the CA that signed it."""
    cert: Path
    key: Path
    ca: Path

    def der(self) -> bytes:
        return ssl.PEM_cert_to_DER_cert(self.cert.read_text())

    def spki_sha256(self) -> str:
        """Base64 SHA-256 of the public key: Chromium's --ignore-certificate-errors-spki-list."""
        public = _openssl("x509", "-in", str(self.cert), "-pubkey", "-noout")
        der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "der"], input=public,
                             check=True, capture_output=True).stdout
        return base64.b64encode(hashlib.sha256(der).digest()).decode()


def make_ca(directory: Path, name: str = "ca") -> tuple[Path, Path]:
    """A throw-away certificate authority: (certificate, key)."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN=tailsse test {name}",
             "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")
    return cert, key


def make_identity(directory: Path, name: str, ca: tuple[Path, Path] | None = None) -> Identity:
    """A server certificate for localhost and 127.0.0.1, signed by `ca` (made if not given)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key = ca or make_ca(directory, f"{name}-ca")
    cert, key, csr, ext = (directory / f"{name}.pem", directory / f"{name}.key", directory / f"{name}.csr",
                           directory / f"{name}.ext")
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key),
             "-out", str(csr), "-subj", "/CN=localhost")
    ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key), "-set_serial",
             str(int.from_bytes(hashlib.sha256(str(cert).encode()).digest()[:8], "big")), "-days", "2",
             "-out", str(cert), "-extfile", str(ext))
    key.chmod(0o600)
    return Identity(cert, key, ca_cert)


def handshake(port: int, ca: Path, alpn: list[str] | None = None) -> tuple[bytes, str | None]:
    """Connects with TLS verifying against `ca`: (the server's certificate as DER, the ALPN protocol)."""
    context = ssl.create_default_context(cafile=str(ca))
    if alpn:
        context.set_alpn_protocols(alpn)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            return tls.getpeercert(binary_form=True), tls.selected_alpn_protocol()
