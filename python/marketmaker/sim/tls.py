"""A self-signed certificate for 127.0.0.1, made at start, and the contexts that use it.

Websocket clients such as cryptofeed accept only ``wss://`` addresses, so the local venue serves
its websockets over TLS. The certificate lives only in memory and in a private temporary file
that exists for the instant :mod:`ssl` needs to load it; a client trusts it through
:meth:`LoopbackCertificate.client_context` and nothing else on the machine does.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import os
import ssl
import tempfile
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["LoopbackCertificate"]

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class LoopbackCertificate:
    """A certificate for ``127.0.0.1`` (and ``localhost``) with its private key, both PEM.

    Examples
    --------
    >>> cert = LoopbackCertificate.create()
    >>> cert.client_context().verify_mode.name
    'CERT_REQUIRED'
    """

    certificate_pem: bytes
    private_key_pem: bytes = field(repr=False)

    @classmethod
    def create(cls, *, valid_days: int = 7) -> LoopbackCertificate:
        """Make a new key pair and a self-signed certificate valid from an hour ago."""
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "marketmaker local venue")])
        now = datetime.datetime.now(datetime.timezone.utc)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=valid_days))
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.IPAddress(ipaddress.ip_address(LOOPBACK)), x509.DNSName("localhost")]
                ),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            # Key usages and identifiers as trustme sets them: VERIFY_X509_STRICT (the default
            # from Python 3.13) rejects a self-signed trust anchor without them.
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
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return cls(certificate.public_bytes(serialization.Encoding.PEM), key_pem)

    def server_context(self) -> ssl.SSLContext:
        """The context the venue's TLS site serves with."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        # load_cert_chain reads files only: write the pair to a private file and remove it at once.
        fd, path = tempfile.mkstemp(prefix="mm-venue-", suffix=".pem")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(self.private_key_pem + self.certificate_pem)
            context.load_cert_chain(path)
        finally:
            os.unlink(path)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts this certificate (and only it), with hostname checks on."""
        return ssl.create_default_context(cadata=self.certificate_pem.decode())
