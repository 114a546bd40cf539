"""R30: `cmo-ledger serve` over TLS, clients that verify the server, and HSTS.

A throwaway CA signs a certificate for 127.0.0.1; `serve --tls-cert --tls-key` runs in a
subprocess on it. A client given the CA bundle (``ca_file``, ``CMO_LEDGER_CA_FILE``)
reads the ledger; one trusting only the system's CAs is refused with a
``TransportFailure`` naming the certificate problem. Responses over TLS carry
``Strict-Transport-Security``; over plain HTTP they do not.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import signal
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from clients.cli.common import connect
from clients.client import LedgerClient
from clients.errors import ClientError, TransportFailure
from ledger.config import Settings
from ledger.errors import ConfigurationError
from ledger.keystore import create_keystore
from tests.support.server import Server, wait_until_serving
from tests.support.world import World

pytestmark = pytest.mark.xdist_group("api_tls")

CMO = "contoso-cmo"
CLI = [sys.executable, "-c", "from clients.cli import main; main()"]
ORIGIN_QUERY = "{ ledger { origin } }"


@dataclass(frozen=True)
class Pki:
    ca: Path
    cert: Path
    key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_pki(directory: Path) -> Pki:
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("cmo-ledger test CA"))
        .issuer_name(_name("cmo-ledger test CA"))
        .public_key(ca_key.public_key())
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
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca_cert.subject)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pki = Pki(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    pki.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    pki.cert.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    pki.key.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return _write_pki(tmp_path_factory.mktemp("pki"))


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CMO_LEDGER_")}
    env.update(
        CMO_LEDGER_DATABASE_URL=settings.database_url,
        CMO_LEDGER_DATA_DIR=str(settings.data_dir),
        CMO_LEDGER_PASSPHRASE="operator passphrase",
    )
    return env


@pytest.fixture(scope="module")
def served_tls(
    api_settings: Settings,
    api_world: World,
    pki: Pki,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """`cmo-ledger serve --tls-cert --tls-key` on the module's ledger."""
    create_keystore(
        api_settings.notary_keystore,
        "notary",
        "operator passphrase",
        signing_key=api_world.notary.key,
        overwrite=True,
        opslimit=1,
        memlimit=8192,
    )
    port = _free_port()
    args = ["serve", "--port", str(port), "--tls-cert", str(pki.cert), "--tls-key", str(pki.key)]
    log_path = tmp_path_factory.mktemp("tls") / "serve.log"
    log = log_path.open("w")
    process = subprocess.Popen(
        [*CLI, *args], env=_env(api_settings), stdout=log, stderr=subprocess.STDOUT
    )
    url = f"https://127.0.0.1:{port}"
    try:
        wait_until_serving(url, process, log_path, verify=ssl.create_default_context(cafile=pki.ca))
        yield url
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def test_a_client_given_the_ca_reads_the_ledger_over_tls(
    served_tls: str, api_world: World, pki: Pki
) -> None:
    actor = api_world[CMO]
    with LedgerClient(served_tls, actor.party_id, actor.key, ca_file=pki.ca) as client:
        data = client.graphql(ORIGIN_QUERY)
    assert data["ledger"]["origin"] == api_world.ledger.identity.origin


def test_a_client_trusting_only_the_system_cas_is_refused_naming_the_certificate(
    served_tls: str, api_world: World
) -> None:
    actor = api_world[CMO]
    client = LedgerClient(served_tls, actor.party_id, actor.key)
    with client, pytest.raises(TransportFailure) as refused:
        client.graphql(ORIGIN_QUERY)
    assert refused.value.code == "TRANSPORT_FAILURE"
    assert "certificate verify failed" in str(refused.value).lower(), str(refused.value)


def test_the_command_line_connects_with_the_ca_file_setting(
    served_tls: str,
    api_world: World,
    pki: Pki,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    actor = api_world[CMO]
    keyfile = tmp_path / "contoso.key"
    create_keystore(keyfile, actor.party_id, "pw", signing_key=actor.key, opslimit=1, memlimit=8192)
    for name in [n for n in os.environ if n.startswith("CMO_LEDGER_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("CMO_LEDGER_PASSPHRASE", "pw")
    monkeypatch.setenv("CMO_LEDGER_CA_FILE", str(pki.ca))
    with connect(served_tls, keyfile) as client:
        assert client.graphql(ORIGIN_QUERY)["ledger"]["origin"]
    monkeypatch.delenv("CMO_LEDGER_CA_FILE")
    with connect(served_tls, keyfile) as client, pytest.raises(TransportFailure):
        client.graphql(ORIGIN_QUERY)


def test_responses_over_tls_carry_hsts(served_tls: str, pki: Pki) -> None:
    context = ssl.create_default_context(cafile=pki.ca)
    for path in ("/healthz", "/checkpoint", "/metrics"):
        response = httpx2.get(f"{served_tls}{path}", verify=context, timeout=10)
        assert response.headers["strict-transport-security"] == "max-age=31536000", path


def test_responses_over_plain_http_carry_no_hsts(server: Server) -> None:
    with server.http(None) as client:
        response = client.get("/healthz")
    assert response.status_code == 200
    assert "strict-transport-security" not in response.headers


def test_a_certificate_without_its_key_is_refused_naming_the_option(
    api_settings: Settings, pki: Pki
) -> None:
    for args, named in (
        (["--tls-cert", str(pki.cert)], "--tls-key"),
        (["--tls-key", str(pki.key)], "--tls-cert"),
        (["--tls-cert", str(pki.cert) + ".missing", "--tls-key", str(pki.key)], "--tls-cert"),
    ):
        done = subprocess.run(
            [*CLI, "serve", "--port", str(_free_port()), *args],
            env=_env(api_settings),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode != 0
        assert "CONFIGURATION_ERROR" in done.stderr + done.stdout, done.stderr
        assert named in done.stderr + done.stdout, done.stderr


def test_the_tls_settings_are_both_or_neither_and_must_exist(pki: Pki, tmp_path: Path) -> None:
    both = Settings.from_env(
        {"CMO_LEDGER_TLS_CERT": str(pki.cert), "CMO_LEDGER_TLS_KEY": str(pki.key)}
    )
    assert (both.tls_cert, both.tls_key) == (pki.cert, pki.key)
    cases = [
        ({"CMO_LEDGER_TLS_CERT": str(pki.cert)}, "CMO_LEDGER_TLS_KEY"),
        ({"CMO_LEDGER_TLS_KEY": str(pki.key)}, "CMO_LEDGER_TLS_CERT"),
        (
            {"CMO_LEDGER_TLS_CERT": str(tmp_path / "nope.pem"), "CMO_LEDGER_TLS_KEY": str(pki.key)},
            "CMO_LEDGER_TLS_CERT",
        ),
        ({"CMO_LEDGER_CA_FILE": str(tmp_path / "nope.pem")}, "CMO_LEDGER_CA_FILE"),
    ]
    for environ, field in cases:
        with pytest.raises(ConfigurationError) as refused:
            Settings.from_env(environ)
        assert refused.value.field == field


def test_an_unreadable_ca_bundle_is_refused_naming_ca_file(
    api_world: World, tmp_path: Path
) -> None:
    actor = api_world[CMO]
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("not a certificate")
    with pytest.raises(ClientError) as refused:
        LedgerClient("https://127.0.0.1:1", actor.party_id, actor.key, ca_file=bogus)
    assert refused.value.field == "ca_file"
