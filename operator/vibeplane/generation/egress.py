"""Where a tenant's model may send the operator: public addresses, and what the platform allows.

A ModelDeployment in a workspace's namespace names its endpoint itself (serving.external's
baseURL); the operator then connects there with its own network position. Without a guard a
tenant could point it at the cloud metadata service (169.254.169.254), the API server, another
tenant's preview or anything on the operator's loopback. So, for tenant models:

- names that only mean something inside the cluster or the host (`localhost`, `*.svc`,
  `*.cluster.local`, single-label names) are refused without a lookup;
- the name is resolved once; every address it resolves to must be global (not loopback,
  link-local, private, shared/CGNAT, reserved, multicast) and outside the cluster's service and
  pod ranges (settings: cluster_cidrs), else the call is refused before any connection;
- the connection goes to the address that was checked (never a second lookup a rebinding DNS
  server could answer differently), and the peer address of the connected socket is checked
  again before a byte is sent.

The platform can allow named destinations (the chart's models.egress.allow: host names, exact,
or CIDRs), e.g. an in-cluster LLM gateway on a private address.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[str]]
"""(host, port) -> the addresses the name resolves to, as text."""

CLUSTER_NAME_SUFFIXES = (".svc", ".cluster.local", ".localhost", ".local", ".internal")
"""Names that resolve only inside a cluster, a host or a cloud's private zone."""
SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")


class EgressRefused(Exception):
    """A tenant model's address is not allowed; `message` says which address and why."""

    reason = "EgressRefused"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to (the operating system's resolver), deduplicated."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise OSError(f"cannot resolve {host}: {error}") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _unmapped(address: Address) -> Address:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _category(address: Address) -> str | None:
    """Why `address` is not public, or None when it is."""
    address = _unmapped(address)
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local (cloud metadata)"
    if address.is_unspecified:
        return "unspecified"
    if address.is_multicast:
        return "multicast"
    if isinstance(address, ipaddress.IPv4Address) and address in SHARED_ADDRESS_SPACE:
        return "shared address space (100.64.0.0/10)"
    if address.is_reserved:
        return "reserved"
    if address.is_private:
        return "private"
    if not address.is_global:
        return "reserved"
    return None


def parse_networks(texts: Iterable[str]) -> tuple[Network, ...]:
    """CIDRs from settings (`10.96.0.0/12`); raises ValueError naming a bad one."""
    networks: list[Network] = []
    for text in texts:
        try:
            networks.append(ipaddress.ip_network(text.strip(), strict=False))
        except ValueError:
            raise ValueError(f"not a CIDR: {text!r}") from None
    return tuple(networks)


@dataclass(frozen=True)
class EgressPolicy:
    """The rule for one tenant model's calls (see the module doc)."""

    cluster_networks: tuple[Network, ...] = ()
    """The cluster's service and pod ranges: refused even where they are public."""
    allowed_hosts: frozenset[str] = frozenset()
    """Host names the platform allows whatever they resolve to (lower case, exact)."""
    allowed_networks: tuple[Network, ...] = ()
    """Address ranges the platform allows (e.g. its LLM gateway's)."""
    resolver: Resolver = field(default=system_resolver, compare=False)

    @classmethod
    def from_settings(
        cls, allow: Iterable[str], cluster_cidrs: Iterable[str], resolver: Resolver | None = None
    ) -> EgressPolicy:
        """`allow`: host names and CIDRs; `cluster_cidrs`: the service and pod ranges."""
        hosts: set[str] = set()
        networks: list[str] = []
        for entry in allow:
            entry = entry.strip()
            if not entry:
                continue
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                hosts.add(entry.lower().rstrip("."))
            else:
                networks.append(entry)
        return cls(
            cluster_networks=parse_networks(cluster_cidrs),
            allowed_hosts=frozenset(hosts),
            allowed_networks=parse_networks(networks),
            resolver=resolver or system_resolver,
        )

    def host_allowed(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.allowed_hosts

    def check_address(self, host: str, text: str) -> Address:
        """`text` as an address if a tenant model may connect to it; else EgressRefused."""
        try:
            address = ipaddress.ip_address(text.split("%", 1)[0])
        except ValueError:
            raise EgressRefused(f"{host} resolves to {text!r}, not an IP address") from None
        if self.host_allowed(host) or any(address in net for net in self.allowed_networks):
            return address
        plain = _unmapped(address)
        for network in self.cluster_networks:
            if plain in network:
                raise EgressRefused(
                    f"{host} resolves to {plain}, in the cluster's range {network}: tenant "
                    "models may not reach cluster services or pods"
                )
        category = _category(address)
        if category is not None:
            where = str(plain) if host == str(plain) else f"{host} resolves to {plain}"
            raise EgressRefused(
                f"{where}, a {category} address: tenant models may reach only public "
                "addresses (the platform can allow a destination: models.egress.allow)"
            )
        return address

    def check_name(self, host: str) -> None:
        """Refuse names that only resolve inside the cluster or host, before any lookup."""
        name = host.lower().rstrip(".")
        if self.host_allowed(name):
            return
        try:
            ipaddress.ip_address(name)
        except ValueError:
            pass
        else:
            return  # an address literal: checked as an address
        if name == "localhost" or name.endswith(CLUSTER_NAME_SUFFIXES) or "." not in name:
            raise EgressRefused(
                f"{host} is a cluster-internal or host-local name: tenant models may reach "
                "only public addresses (the platform can allow a destination: "
                "models.egress.allow)"
            )

    def pin(self, host: str, port: int) -> str:
        """The one address to connect to for `host`: resolved once, every answer checked
        (a name with one private answer among public ones is refused, since the choice
        among them is not ours to rely on). Raises EgressRefused, or OSError when the name
        does not resolve."""
        self.check_name(host)
        try:
            literal = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            answers = list(self.resolver(host, port))
        else:
            answers = [str(literal)]
        if not answers:
            raise OSError(f"cannot resolve {host}: no addresses")
        checked = [self.check_address(host, answer) for answer in answers]
        return str(checked[0])


__all__ = [
    "EgressPolicy",
    "EgressRefused",
    "Resolver",
    "parse_networks",
    "system_resolver",
]
