"""tshark as the oracle for the monitor's decoder: the same capture, field by field.

``tshark_packets(pcap)`` runs ``tshark -T fields`` once over a capture and returns, per frame
number, the DESIGN.md packet object tshark's dissectors give (same keys, same formats);
``assert_same_as_tshark`` compares it with the monitor's packet objects. tshark follows TFTP onto
the server's ephemeral ports by itself (``tftp.request_frame`` names each packet's request), so
the monitor's ``transfer`` ids are checked against it too.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

FIELDS = [
    "frame.number",
    "frame.protocols",
    "eth.src",
    "eth.dst",
    "sll.src.eth",
    "ip.src",
    "ip.dst",
    "udp.srcport",
    "udp.dstport",
    "udp.length",
    "dhcp.option.dhcp",
    "dhcp.type",
    "dhcp.id",
    "dhcp.hw.mac_addr",
    "dhcp.ip.client",
    "dhcp.ip.your",
    "dhcp.ip.server",
    "dhcp.option.dhcp_server_id",
    "dhcp.option.vendor_class_id",
    "dhcp.option.tftp_server_name",
    "dhcp.option.bootfile_name",
    "dhcp.option.client_system_architecture",
    "dhcp.option.type",
    "dhcp.option.value",
    "dhcp.option.vendor.pxeclient.boot_menu.desc",
    "arp.opcode",
    "arp.src.hw_mac",
    "arp.src.proto_ipv4",
    "arp.dst.hw_mac",
    "arp.dst.proto_ipv4",
    "tftp.opcode",
    "tftp.source_file",
    "tftp.destination_file",
    "tftp.type",
    "tftp.option.name",
    "tftp.option.value",
    "tftp.block",
    "tftp.error.code",
    "tftp.error.message",
    "tftp.request_frame",
]
_MSG = {
    1: "DISCOVER",
    2: "OFFER",
    3: "REQUEST",
    4: "DECLINE",
    5: "ACK",
    6: "NAK",
    7: "RELEASE",
    8: "INFORM",
}
_TFTP = {1: "RRQ", 2: "WRQ", 3: "DATA", 4: "ACK", 5: "ERROR", 6: "OACK"}
_SEP = "\x1f"


def _run(pcap: Path) -> list[dict[str, list[str]]]:
    argv = [
        "tshark",
        "-n",
        "-r",
        str(pcap),
        "-T",
        "fields",
        "-E",
        "occurrence=a",
        "-E",
        f"aggregator={_SEP}",
        "-E",
        "separator=\t",
    ]
    for name in FIELDS:
        argv += ["-e", name]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=600).stdout
    rows = []
    for line in out.splitlines():
        cols = line.split("\t")
        rows.append({n: (c.split(_SEP) if c else []) for n, c in zip(FIELDS, cols, strict=False)})
    return rows


def _one(row: dict[str, list[str]], name: str) -> str | None:
    values = row.get(name) or []
    return values[0] if values else None


def tshark_packets(pcap: Path) -> dict[int, dict[str, Any]]:
    """Frame index (from 0) → the packet object as tshark decodes it (DHCP, ARP, TFTP only)."""
    packets: dict[int, dict[str, Any]] = {}
    for row in _run(pcap):
        i = int(_one(row, "frame.number") or 0) - 1
        protos = (_one(row, "frame.protocols") or "").split(":")
        obj: dict[str, Any] = {}
        src = _one(row, "eth.src") or _one(row, "sll.src.eth")
        if src:
            obj["src_mac"] = src
        if _one(row, "eth.dst"):
            obj["dst_mac"] = _one(row, "eth.dst")
        if "arp" in protos:
            obj["proto"] = "arp"
            op = int(_one(row, "arp.opcode") or 0)
            if op in (1, 2):
                obj["op"] = "request" if op == 1 else "reply"
            obj["sender_mac"] = _one(row, "arp.src.hw_mac")
            obj["sender_ip"] = _one(row, "arp.src.proto_ipv4")
            obj["target_mac"] = _one(row, "arp.dst.hw_mac")
            obj["target_ip"] = _one(row, "arp.dst.proto_ipv4")
            packets[i] = obj
            continue
        if "dhcp" not in protos and "tftp" not in protos:
            continue
        obj.update(
            src_ip=_one(row, "ip.src"),
            dst_ip=_one(row, "ip.dst"),
            src_port=int(_one(row, "udp.srcport") or 0),
            dst_port=int(_one(row, "udp.dstport") or 0),
        )
        if "dhcp" in protos:
            obj["proto"] = "dhcp"
            kind = _one(row, "dhcp.option.dhcp")
            if kind:
                obj["msg_type"] = _MSG.get(int(kind))
            obj["xid"] = _one(row, "dhcp.id")
            obj["chaddr"] = _one(row, "dhcp.hw.mac_addr")
            obj["ciaddr"] = _one(row, "dhcp.ip.client")
            obj["yiaddr"] = _one(row, "dhcp.ip.your")
            obj["siaddr"] = _one(row, "dhcp.ip.server")
            for key, field in (
                ("server_id", "dhcp.option.dhcp_server_id"),
                ("vendor_class", "dhcp.option.vendor_class_id"),
                ("tftp_server", "dhcp.option.tftp_server_name"),
                ("bootfile", "dhcp.option.bootfile_name"),
            ):
                if _one(row, field) is not None:
                    obj[key] = _one(row, field)
            arch = _one(row, "dhcp.option.client_system_architecture")
            if arch is not None:
                obj["client_arch"] = int(arch)
            # option 97: tshark shows it as a UUID; compare the raw option value instead
            types = [t for t in row.get("dhcp.option.type", []) if t not in ("0", "255")]
            values = row.get("dhcp.option.value", [])
            for t, v in zip(types, values, strict=False):
                if t == "97":
                    obj["client_uuid"] = v.replace(":", "")
            menu = row.get("dhcp.option.vendor.pxeclient.boot_menu.desc")
            if "43" in types:
                obj["pxe_menu"] = list(menu or [])
            packets[i] = obj
            continue
        obj["proto"] = "tftp"
        opcode = int(_one(row, "tftp.opcode") or 0)
        obj["opcode"] = _TFTP.get(opcode)
        name = _one(row, "tftp.source_file") or _one(row, "tftp.destination_file")
        if name is not None:
            obj["file"] = name
        if _one(row, "tftp.type") is not None:
            obj["mode"] = _one(row, "tftp.type")
        names, vals = row.get("tftp.option.name", []), row.get("tftp.option.value", [])
        if opcode in (1, 2, 6):
            obj["options"] = {n.lower(): v for n, v in zip(names, vals, strict=False)}
        if opcode in (3, 4):
            obj["block"] = int(_one(row, "tftp.block") or 0)
        if opcode == 3:
            obj["length"] = int(_one(row, "udp.length") or 0) - 12
        if opcode == 5:
            obj["error_code"] = int(_one(row, "tftp.error.code") or 0)
            obj["error_msg"] = _one(row, "tftp.error.message") or ""
        request = _one(row, "tftp.request_frame")
        obj["_request_i"] = int(request) - 1 if request else i
        packets[i] = obj
    return packets


_OURS_ONLY = ("type", "i", "t", "mac", "transfer")


def assert_same_as_tshark(pcap: Path, ours: list[dict[str, Any]], *, cooked: bool = False) -> int:
    """Every packet object equals tshark's decode of the same frame; returns how many.

    ``cooked``: a Linux cooked capture, where tshark shows no destination MAC but the monitor
    knows a broadcast's from the packet type (the only ``dst_mac`` it gives there).

    Also: the frames tshark decodes as DHCP/ARP/TFTP are exactly ours, and every packet of one
    of our transfers belongs to one of that transfer's requests in tshark's view.
    """
    theirs = tshark_packets(pcap)
    mine = {p["i"]: p for p in ours if p.get("type") == "packet"}
    assert sorted(mine) == sorted(theirs), (
        f"frames only we decode: {sorted(set(mine) - set(theirs))[:10]}, "
        f"only tshark: {sorted(set(theirs) - set(mine))[:10]}"
    )
    requests: dict[int, set[int]] = {}
    for i, obj in mine.items():
        want = dict(theirs[i])
        request = want.pop("_request_i", None)
        got = {k: v for k, v in obj.items() if k not in _OURS_ONLY}
        if cooked and got.get("dst_mac") == "ff:ff:ff:ff:ff:ff" and "dst_mac" not in want:
            del got["dst_mac"]
        assert got == want, f"frame {i + 1}: ours {got} ≠ tshark {want}"
        if obj.get("transfer") is not None and request is not None:
            requests.setdefault(obj["transfer"], set()).add(request)
    by_request = {p["i"]: p["transfer"] for p in mine.values() if p.get("opcode") in ("RRQ", "WRQ")}
    for transfer, reqs in requests.items():
        assert {by_request.get(r) for r in reqs} == {transfer}, (transfer, reqs)
    return len(mine)
