"""`testbed controller serve --ssl-certfile --ssl-keyfile` serves HTTPS (a self-signed
certificate made here), with the same limits; plain HTTP to it gets no answer."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import sys
import time
from pathlib import Path

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from testbed.launcher import Processes, controller_env, free_port


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_the_controller_serves_https(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    port = free_port()
    env = controller_env(tmp_path, port, [], "operator-token-Zq81xW4v", "enrol-token-Kp29yT6u")
    procs = Processes(tmp_path / "logs")
    procs.start(
        "controller",
        [
            *(sys.executable, "-m", "testbed", "controller", "serve", "--log-level", "warning"),
            *("--ssl-certfile", str(cert), "--ssl-keyfile", str(key)),
        ],
        env,
    )
    try:
        url, ready = f"https://127.0.0.1:{port}", None
        trust = ssl.create_default_context(cafile=str(cert))
        for _ in range(100):
            try:
                ready = httpx.get(f"{url}/readyz", verify=trust, timeout=2)
                break
            except httpx.TransportError:
                if procs.children["controller"].poll() is not None:
                    raise AssertionError(procs.tail("controller")) from None
                time.sleep(0.2)
        assert ready is not None
        assert ready.status_code == 200
        unauthorised = httpx.get(f"{url}/api/v1/experiments", verify=trust)
        assert unauthorised.status_code == 401
        try:
            plain = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=3)
            assert plain.status_code != 200
        except httpx.TransportError:
            pass  # the TLS server drops a plain-text client
    finally:
        procs.stop_all()
