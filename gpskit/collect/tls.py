"""A certificate for the laptop, so phones on the local network get a secure page.

Phone browsers give the camera and the position only to secure pages (HTTPS, or the
phone's own loopback). gpskit makes one self-signed certificate for the addresses the
laptop has on its networks (and ``localhost``), keeps it in the dataset's ``.gpskit/``
folder (the key readable by this user only), and makes a new one when the laptop's
addresses change or it is about to expire. A phone warns once that the certificate is
not from an authority it knows; ``docs/collect.md`` says what to tap.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from gpskit.errors import require_module

#: How long a certificate gpskit makes is valid (browsers refuse more than 398 days).
VALID_DAYS = 397
#: A certificate closer than this to its end is made again.
RENEW_DAYS = 7


@dataclass(frozen=True)
class Certificate:
    """Where the certificate and its key are, and the addresses it is valid for."""

    cert: Path
    key: Path
    addresses: tuple[str, ...]


def local_addresses() -> list[str]:
    """This machine's IPv4 addresses on its networks (the one a phone on the same Wi-Fi
    reaches first), and loopback."""
    found: list[str] = []
    try:  # the address the default route leaves from (no packet is sent)
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            probe.connect(("10.255.255.255", 1))
            found.append(probe.getsockname()[0])
        finally:
            probe.close()
    except OSError:
        pass
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            found.append(str(info[4][0]))
    except OSError:
        pass
    found.append("127.0.0.1")
    usable = [a for a in dict.fromkeys(found) if not ipaddress.ip_address(a).is_unspecified]
    return sorted(usable, key=lambda a: (ipaddress.ip_address(a).is_loopback, a))


def ensure_certificate(folder: Path, addresses: list[str]) -> Certificate:
    """The certificate in ``folder`` when it covers ``addresses`` and is not about to
    expire; else a new one (key and certificate written atomically, key mode 0600)."""
    require_module("cryptography", "serving HTTPS needs the cryptography package", "gpskit[app]")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    cert_path, key_path = folder / "collect-cert.pem", folder / "collect-key.pem"
    wanted = sorted(set(addresses))
    if _still_good(cert_path, key_path, wanted):
        return Certificate(cert_path, key_path, tuple(wanted))
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gpskit collect")])
    now = dt.datetime.now(dt.timezone.utc)
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    names += [x509.IPAddress(ipaddress.ip_address(a)) for a in wanted]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_private(key_path, key_bytes)
    _write_private(cert_path, certificate.public_bytes(serialization.Encoding.PEM))
    return Certificate(cert_path, key_path, tuple(wanted))


def _still_good(cert_path: Path, key_path: Path, wanted: list[str]) -> bool:
    from cryptography import x509

    try:
        certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key_path.read_bytes()
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except (OSError, ValueError, x509.ExtensionNotFound):
        return False
    covered = {str(a) for a in names.value.get_values_for_type(x509.IPAddress)}
    ends = certificate.not_valid_after_utc
    fresh = ends - dt.datetime.now(dt.timezone.utc) > dt.timedelta(days=RENEW_DAYS)
    return fresh and set(wanted) <= covered


def _write_private(path: Path, data: bytes) -> None:
    staged = path.with_name(f".{path.name}.{os.getpid()}.part")
    descriptor = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    os.replace(staged, path)
