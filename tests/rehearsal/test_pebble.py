"""The DNS Pebble asks in the ACME rehearsal (rehearsal/hosts/pebble.py), and the emulation's
mapping of `container:<id>` (the ACME client's pidMode)."""

from __future__ import annotations

import socket
import struct

from rehearsal.emulation.translate import substitute
from rehearsal.hosts.pebble import dns_answer


def query(name: str, qtype: int = 1, ident: int = 0x1234) -> bytes:
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split("."))
    return struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + labels + b"\x00" + struct.pack("!HH", qtype, 1)


def known(name: str):
    return "127.0.0.1" if name == "example.com" else None


def test_a_known_name_gets_its_a_record_and_the_same_id():
    answer = dns_answer(query("Example.COM"), known)
    ident, flags, qd, an = struct.unpack("!HHHH", answer[:8])
    assert (ident, flags & 0x000F, qd, an) == (0x1234, 0, 1, 1)
    assert answer[-4:] == socket.inet_aton("127.0.0.1")


def test_a_known_name_has_no_other_record_and_an_unknown_one_does_not_exist():
    aaaa = dns_answer(query("example.com", qtype=28), known)
    assert struct.unpack("!HHHH", aaaa[:8])[1:] == (0x8180, 1, 0)  # NOERROR, no answer
    unknown = dns_answer(query("refused.example.com"), known)
    assert struct.unpack("!HH", unknown[:4])[1] & 0x000F == 3  # NXDOMAIN


def test_the_emulation_maps_a_container_reference_to_the_real_container():
    mapping = {"nginx-id": "4f2a"}
    assert substitute({"pidMode": "container:nginx-id", "x": ["nginx-id"]}, mapping) == {
        "pidMode": "container:4f2a",
        "x": ["4f2a"],
    }
    assert substitute("container:other", mapping) == "container:other"
