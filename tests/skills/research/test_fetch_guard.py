"""The fetch guard's rules on their own: which addresses are refused and why, how an allowed
host is matched however it was written, and what the config accepts as one. What it does to
real connections is in test_fetch.py, against servers on 127.0.0.1."""

from __future__ import annotations

import ipaddress

import pytest
from pydantic import ValidationError

from myninja.config import Config
from myninja.skills.research.fetch_guard import (
    METADATA,
    PRIVATE,
    RESERVED,
    AddressPolicy,
    AddressRefused,
    host_key,
    refusal,
)

LOOPBACK = "a loopback address"
LINK_LOCAL = "a link-local address"
MULTICAST = "a multicast address"
UNSPECIFIED = "an unspecified address"


@pytest.mark.parametrize(
    ("address", "why"),
    [
        # IPv4
        ("127.0.0.1", LOOPBACK),
        ("127.255.0.9", LOOPBACK),
        ("10.20.30.40", PRIVATE),
        ("172.16.0.1", PRIVATE),
        ("172.31.255.254", PRIVATE),
        ("192.168.0.10", PRIVATE),
        ("100.64.0.1", "a shared (CGNAT) address"),
        ("100.127.255.254", "a shared (CGNAT) address"),
        ("169.254.169.254", METADATA),
        ("100.100.100.200", METADATA),
        ("168.63.129.16", METADATA),
        ("169.254.1.1", LINK_LOCAL),
        ("0.0.0.0", UNSPECIFIED),
        ("0.1.2.3", UNSPECIFIED),
        ("224.0.0.1", MULTICAST),
        ("239.255.255.250", MULTICAST),
        ("240.0.0.1", RESERVED),
        ("255.255.255.255", RESERVED),
        ("192.0.0.8", RESERVED),
        ("192.0.2.1", RESERVED),
        ("198.18.0.1", RESERVED),
        ("198.51.100.7", RESERVED),
        ("203.0.113.7", RESERVED),
        # IPv6
        ("::1", LOOPBACK),
        ("::", UNSPECIFIED),
        ("fe80::1", LINK_LOCAL),
        ("fc00::1", PRIVATE),
        ("fd12:3456:789a::1", PRIVATE),
        ("fec0::1", PRIVATE),
        ("fd00:ec2::254", METADATA),
        ("ff02::1", MULTICAST),
        ("2001:db8::1", RESERVED),
        ("2001::1", RESERVED),  # Teredo
        ("3fff::1", RESERVED),
        ("100::1", RESERVED),
        ("64:ff9b:1::1", PRIVATE),
        ("::2", RESERVED),  # outside global unicast
        ("4000::1", RESERVED),
        # IPv6 carrying IPv4: judged by the IPv4 address
        ("::ffff:127.0.0.1", LOOPBACK),
        ("::ffff:10.0.0.1", PRIVATE),
        ("::ffff:169.254.169.254", METADATA),
        ("::ffff:100.64.0.1", "a shared (CGNAT) address"),
        ("64:ff9b::7f00:1", LOOPBACK),  # NAT64 of 127.0.0.1
        ("64:ff9b::a9fe:a9fe", METADATA),  # NAT64 of 169.254.169.254
        ("2002:c0a8:101::1", PRIVATE),  # 6to4 of 192.168.1.1
    ],
)
def test_internal_addresses_are_refused_with_their_kind(address: str, why: str) -> None:
    assert refusal(ipaddress.ip_address(address)) == why


@pytest.mark.parametrize(
    "address",
    [
        "93.184.215.14",
        "8.8.8.8",
        "1.1.1.1",
        "100.63.255.255",  # just below CGNAT
        "100.128.0.0",  # just above
        "172.32.0.1",  # just past 172.16.0.0/12
        "169.253.255.255",
        "2606:4700:4700::1111",
        "2a00:1450:4001:80b::200e",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",  # NAT64 of 8.8.8.8
        "2002:808:808::1",  # 6to4 of 8.8.8.8
    ],
)
def test_public_addresses_pass(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    ("written", "key"),
    [
        ("Intranet.Example.", "intranet.example"),
        ("[::1]", "::1"),
        ("0:0:0:0:0:0:0:1", "::1"),
        ("[FD00:EC2::254]", "fd00:ec2::254"),
        ("bücher.example", "xn--bcher-kva.example"),
        (" 10.0.0.5 ", "10.0.0.5"),
    ],
)
def test_a_host_matches_however_it_was_written(written: str, key: str) -> None:
    assert host_key(written) == key


def test_an_allowed_name_may_resolve_anywhere_and_an_allowed_address_under_any_name() -> None:
    policy = AddressPolicy(["Intranet.Example", "10.0.0.5"])
    policy.check("intranet.example", ["10.9.9.9", "127.0.0.1"])
    policy.check("wiki.lan", ["10.0.0.5"])
    policy.check("example.org", ["93.184.215.14"])
    with pytest.raises(AddressRefused) as info:
        policy.check("wiki.lan", ["10.0.0.5", "10.0.0.6"])
    assert str(info.value) == "wiki.lan resolves to 10.0.0.6, a private address"
    assert (info.value.host, info.value.address) == ("wiki.lan", "10.0.0.6")
    with pytest.raises(AddressRefused, match=r"^127\.0\.0\.1 is a loopback address$"):
        AddressPolicy().check("127.0.0.1", ["127.0.0.1"])


def test_the_config_takes_bare_hosts_and_refuses_urls() -> None:
    hosts = ["127.0.0.1", "[::1]", "fd00::5", "intranet.example", "bücher.example"]
    config = Config.model_validate({"research": {"web": {"allowed_hosts": hosts}}})
    assert config.research.web.allowed_hosts == hosts
    assert Config().research.web.allowed_hosts == []
    for bad in ["http://intranet.example", "intranet.example:8080", "a/b", "", "two words"]:
        with pytest.raises(ValidationError, match="is not a host name or address"):
            Config.model_validate({"research": {"web": {"allowed_hosts": [bad]}}})
