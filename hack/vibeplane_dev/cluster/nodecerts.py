"""Certificates of the real node, signed by the local control plane's CA.

- the kubelet's client certificate (system:node:<name> in system:nodes: the Node authorizer
  and NodeRestriction limit it to its own node and pods);
- the kubelet's serving certificate for the node's address, which the API server verifies
  (--kubelet-certificate-authority) when it proxies logs, exec and port-forward;
- the API server's client certificate towards kubelets (kube-apiserver-kubelet-client, bound to
  system:kubelet-api-admin), checked by the kubelet's webhook authentication/authorization;
- kube-proxy (system:kube-proxy, a built-in binding) and kube-router (its own ClusterRole).

Existing files are kept unless they no longer match what is asked (a new node address).
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

STANDIN_SERVING = "standin-serving"


@dataclass(frozen=True)
class Leaf:
    """One certificate to issue."""

    file: str
    common_name: str
    organization: str | None = None
    server: bool = False
    ips: tuple[str, ...] = ()
    dns: tuple[str, ...] = ()


def node_leaves(node_name: str, node_ip: str) -> list[Leaf]:
    return [
        Leaf("kubelet-client", f"system:node:{node_name}", "system:nodes"),
        Leaf(
            "kubelet-serving",
            f"system:node:{node_name}",
            "system:nodes",
            server=True,
            ips=(node_ip,),
            dns=(node_name,),
        ),
        Leaf("apiserver-kubelet-client", "kube-apiserver-kubelet-client"),
        Leaf("kube-proxy", "system:kube-proxy"),
        Leaf("kube-router", "vibeplane:kube-router"),
        # The stand-in preview node (runtime/sandbox) serves `kubectl logs` on 127.0.0.1, its
        # InternalIP: the API server verifies it against the cluster CA like the real kubelet.
        Leaf(
            STANDIN_SERVING,
            "system:node:vibeplane-standin",
            "system:nodes",
            server=True,
            ips=("127.0.0.1",),
            dns=("localhost",),
        ),
    ]


def _load_ca(pki: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    ca = x509.load_pem_x509_certificate((pki / "ca.crt").read_bytes())
    key = serialization.load_pem_private_key((pki / "ca.key").read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise RuntimeError(f"{pki / 'ca.key'} is not the ECDSA key the control plane writes")
    return ca, key


def _matches(path: Path, leaf: Leaf, ca: x509.Certificate) -> bool:
    if not path.is_file():
        return False
    certificate = x509.load_pem_x509_certificate(path.read_bytes())
    if certificate.issuer != ca.subject:
        return False
    if not leaf.server:
        return True
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    ips = {str(ip) for ip in names.get_values_for_type(x509.IPAddress)}
    return ips == set(leaf.ips)


def write_node_certificates(pki: Path, directory: Path, node_name: str, node_ip: str) -> Path:
    """Issue the node's certificates into directory (kept when still right); returns it."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    ca, ca_key = _load_ca(pki)
    now = datetime.datetime.now(datetime.UTC)
    for leaf in node_leaves(node_name, node_ip):
        cert_path, key_path = directory / f"{leaf.file}.crt", directory / f"{leaf.file}.key"
        if _matches(cert_path, leaf, ca) and key_path.is_file():
            continue
        key = ec.generate_private_key(ec.SECP256R1())
        subject = [x509.NameAttribute(NameOID.COMMON_NAME, leaf.common_name)]
        if leaf.organization:
            subject.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, leaf.organization))
        usage = ExtendedKeyUsageOID.SERVER_AUTH if leaf.server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(subject))
            .issuer_name(ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_encipherment=False,
                    content_commitment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if leaf.server:
            alternative: list[x509.GeneralName] = [
                x509.IPAddress(ipaddress.ip_address(ip)) for ip in leaf.ips
            ]
            alternative += [x509.DNSName(name) for name in leaf.dns]
            builder = builder.add_extension(
                x509.SubjectAlternativeName(alternative), critical=False
            )
        certificate = builder.sign(ca_key, hashes.SHA256())
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        key_path.chmod(0o600)
        cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return directory
