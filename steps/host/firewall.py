"""Does the host firewall drop the Pi's DHCP (udp/67) or TFTP (udp/69) requests?

Parsed, not guessed: the nftables ruleset as JSON (``nft -j list ruleset``) and iptables rules as
``iptables-save`` prints them are turned into one small rule model and walked the way the kernel
walks them — rules in order, jumps followed, the base chain's policy at the end — for a new IPv4
UDP packet to each port arriving on the chosen interface. A rule is a definite match, no match,
or "maybe" (it also tests something we cannot know, such as a source address); definite drops are
errors, maybe-drops are warnings, and each names the rule.

iptables-nft keeps its rules in nftables tables named filter/raw/mangle/nat/security; those are
read from ``iptables-save`` (which can print their xt matches) and skipped in the nft JSON.
"""

from __future__ import annotations

import fnmatch
import json
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

Match = Literal["yes", "no", "maybe"]
Action = Literal["accept", "drop", "jump", "goto", "return", "continue"]

IPTABLES_TABLES = frozenset({"filter", "raw", "mangle", "nat", "security"})
_HOOKS = ("prerouting", "input")


@dataclass(frozen=True)
class Cond:
    """One test of a rule; ``kind`` says what it looks at."""

    kind: Literal["dport", "proto", "iif", "ctstate", "other"]
    values: tuple[Any, ...] = ()
    negate: bool = False
    text: str = ""

    def test(self, port: int, iface: str) -> Match:
        """Does a new UDP packet to ``port`` on ``iface`` satisfy this test?"""
        if self.kind == "other":
            return "maybe"
        if self.kind == "dport":
            hit = any(_port_in(port, v) for v in self.values)
        elif self.kind == "proto":
            hit = any(str(v).lower() in ("udp", "17") for v in self.values)
        elif self.kind == "iif":
            hit = any(_iface_matches(str(v), iface) for v in self.values)
        else:  # ctstate: our packets are new connections
            hit = any(str(v).lower() == "new" for v in self.values)
        return "yes" if hit != self.negate else "no"


_SERVICES = {"bootps": 67, "bootpc": 68, "tftp": 69}


def _port_in(port: int, value: Any) -> bool:
    if isinstance(value, tuple):
        return int(value[0]) <= port <= int(value[1])
    if isinstance(value, int):
        return value == port
    text = str(value)
    return int(text) == port if text.isdigit() else _SERVICES.get(text) == port


def _iface_matches(pattern: str, iface: str) -> bool:
    if pattern.endswith("+"):  # iptables wildcard
        return iface.startswith(pattern[:-1])
    return fnmatch.fnmatchcase(iface, pattern)


@dataclass(frozen=True)
class Rule:
    """A rule reduced to its tests and its verdict."""

    conds: tuple[Cond, ...]
    action: Action
    target: str = ""
    text: str = ""

    def test(self, port: int, iface: str) -> Match:
        """All tests must hold; one "no" decides, otherwise any "maybe" makes it maybe."""
        result: Match = "yes"
        for cond in self.conds:
            got = cond.test(port, iface)
            if got == "no":
                return "no"
            if got == "maybe":
                result = "maybe"
        return result


@dataclass
class Chain:
    """A chain: base chains have a hook and a policy."""

    name: str
    rules: list[Rule] = field(default_factory=list)
    hook: str | None = None
    policy: str = "accept"
    where: str = ""
    """Human name: "inet filt input", "iptables filter INPUT"."""


@dataclass(frozen=True)
class Blocked:
    """A drop found on the way of a packet to ``port``."""

    port: int
    definite: bool
    rule: str
    """The rule (or the chain policy) that drops it."""


def _walk(
    chain: Chain, chains: dict[str, Chain], port: int, iface: str, depth: int = 0
) -> tuple[str | None, list[Blocked]]:
    """(final verdict or None when undecided, maybe-drops seen on the way)."""
    maybes: list[Blocked] = []
    if depth > 16:
        return None, maybes
    for rule in chain.rules:
        got = rule.test(port, iface)
        if got == "no" or rule.action == "continue":
            continue
        if got == "maybe":
            if rule.action == "drop":
                maybes.append(Blocked(port, False, rule.text))
            continue
        if rule.action in ("accept", "drop"):
            return rule.text if rule.action == "drop" else "accept", maybes
        if rule.action == "return":
            return None, maybes
        sub = chains.get(rule.target)
        if sub is not None:
            verdict, more = _walk(sub, chains, port, iface, depth + 1)
            maybes += more
            if verdict is not None:
                return verdict, maybes
            if rule.action == "goto":
                return None, maybes
    return None, maybes


def blocked(chains: Iterable[Chain], ports: Iterable[int], iface: str) -> list[Blocked]:
    """Every drop on the way of a new UDP packet to each port (definite first)."""
    table = list(chains)
    by_name: dict[str, dict[str, Chain]] = {}
    for c in table:
        by_name.setdefault(c.where.rsplit(" ", 1)[0], {})[c.name] = c
    out: list[Blocked] = []
    for port in ports:
        for base in (c for c in table if c.hook in _HOOKS):
            scope = by_name.get(base.where.rsplit(" ", 1)[0], {})
            verdict, maybes = _walk(base, scope, port, iface)
            out += maybes
            if verdict is None and base.policy == "drop":
                out.append(Blocked(port, True, f"{base.where}: policy drop"))
            elif verdict not in (None, "accept"):
                out.append(Blocked(port, True, verdict))
    return sorted(out, key=lambda b: (not b.definite, b.port, b.rule))


# ------------------------------------------------------------------ nftables JSON


def _nft_values(right: Any) -> tuple[Any, ...]:
    if isinstance(right, dict):
        if "set" in right:
            return tuple(v for item in right["set"] for v in _nft_values(item))
        if "range" in right:
            lo, hi = right["range"]
            return ((lo, hi),)
        if "prefix" in right:
            return ()
    if isinstance(right, list):
        return tuple(v for item in right for v in _nft_values(item))
    return (right,)


def _nft_cond(match: dict[str, Any]) -> Cond:
    left = match.get("left", {})
    op = match.get("op", "==")
    negate = op == "!="
    right = match.get("right")
    text = f"{_nft_left(left)} {'!= ' if negate else ''}{_nft_right(right)}"
    if op not in ("==", "!=", "in"):
        return Cond("other", text=text)
    if isinstance(left, dict):
        payload = left.get("payload")
        meta = left.get("meta")
        ct = left.get("ct")
        if isinstance(payload, dict):
            proto, fld = payload.get("protocol"), payload.get("field")
            if proto == "udp" and fld == "dport":
                return Cond("dport", _nft_values(right), negate, text)
            if proto == "ip" and fld == "protocol":
                return Cond("proto", _nft_values(right), negate, text)
        if isinstance(meta, dict) and meta.get("key") in ("l4proto", "protocol"):
            if meta.get("key") == "l4proto":
                return Cond("proto", _nft_values(right), negate, text)
            return Cond("other", text=text)
        if isinstance(meta, dict) and meta.get("key") in ("iifname", "iif"):
            return Cond("iif", _nft_values(right), negate, text)
        if isinstance(ct, dict) and ct.get("key") == "state":
            return Cond("ctstate", _nft_values(right), negate, text)
    return Cond("other", text=text)


def _nft_left(left: Any) -> str:
    if isinstance(left, dict):
        if "payload" in left:
            p = left["payload"]
            return f"{p.get('protocol', '')} {p.get('field', '')}".strip()
        if "meta" in left:
            return f"meta {left['meta'].get('key', '')}"
        if "ct" in left:
            return f"ct {left['ct'].get('key', '')}"
    return json.dumps(left, separators=(",", ":"))


def _nft_right(right: Any) -> str:
    if isinstance(right, dict):
        if "set" in right:
            return "{ " + ", ".join(_nft_right(v) for v in right["set"]) + " }"
        if "range" in right:
            return f"{right['range'][0]}-{right['range'][1]}"
        if "prefix" in right:
            return f"{right['prefix'].get('addr')}/{right['prefix'].get('len')}"
    if isinstance(right, list):
        return "{ " + ", ".join(_nft_right(v) for v in right) + " }"
    return str(right)


def _nft_rule(rule: dict[str, Any], where: str) -> Rule:
    conds: list[Cond] = []
    action: Action = "continue"
    target = ""
    words: list[str] = []
    for expr in rule.get("expr", []):
        if not isinstance(expr, dict) or not expr:
            continue
        key = next(iter(expr))
        if key == "match":
            cond = _nft_cond(expr["match"])
            conds.append(cond)
            words.append(cond.text)
        elif key in ("drop", "reject"):
            action = "drop"
            words.append(key)
        elif key == "accept":
            action = "accept"
            words.append(key)
        elif key in ("jump", "goto"):
            action = "jump" if key == "jump" else "goto"
            target = str(expr[key].get("target", ""))
            words.append(f"{key} {target}")
        elif key == "return":
            action = "return"
            words.append("return")
        elif key in ("counter", "log", "limit", "comment"):
            continue
        else:  # xt, set updates, mangling …: a test or action we do not model
            conds.append(Cond("other", text=key))
            words.append(key)
    handle = rule.get("handle")
    text = f"{where} (handle {handle}): {' '.join(words)}"
    return Rule(tuple(conds), action, target, text)


def parse_nft(ruleset_json: str) -> list[Chain]:
    """Chains of ``nft -j list ruleset`` except iptables-nft's own tables.

    Raises:
        ValueError: the text is not nft's JSON.
    """
    data = json.loads(ruleset_json)
    items = data.get("nftables") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ValueError("not the JSON of `nft -j list ruleset`")
    chains: dict[tuple[str, str, str], Chain] = {}
    for item in items:
        if not isinstance(item, dict):
            continue
        if "chain" in item:
            c = item["chain"]
            family, table = c.get("family", ""), c.get("table", "")
            if family not in ("ip", "inet") or _iptables_owned(family, table):
                continue
            where = f"{family} {table} {c.get('name')}"
            chains[(family, table, c.get("name", ""))] = Chain(
                name=c.get("name", ""),
                hook=c.get("hook"),
                policy=c.get("policy", "accept"),
                where=where,
            )
        elif "rule" in item:
            r = item["rule"]
            key = (r.get("family", ""), r.get("table", ""), r.get("chain", ""))
            chain = chains.get(key)
            if chain is not None:
                chain.rules.append(_nft_rule(r, chain.where))
    return list(chains.values())


def _iptables_owned(family: str, table: str) -> bool:
    return family == "ip" and table in IPTABLES_TABLES


# ------------------------------------------------------------------ iptables-save


def _ipt_rule(args: list[str], where: str, text: str) -> Rule:
    conds: list[Cond] = []
    action: Action = "continue"
    target = ""
    negate = False
    i = 0
    while i < len(args):
        arg = args[i]
        value = args[i + 1] if i + 1 < len(args) else ""
        if arg == "!":
            negate = True
            i += 1
            continue
        if arg in ("-p", "--protocol"):
            conds.append(Cond("proto", (value,), negate, f"-p {value}"))
            i += 2
        elif arg in ("--dport", "--destination-port"):
            conds.append(Cond("dport", (_ipt_port(value),), negate, f"--dport {value}"))
            i += 2
        elif arg in ("--dports", "--destination-ports"):
            ports = tuple(_ipt_port(p) for p in value.split(","))
            conds.append(Cond("dport", ports, negate, f"--dports {value}"))
            i += 2
        elif arg in ("-i", "--in-interface"):
            conds.append(Cond("iif", (value,), negate, f"-i {value}"))
            i += 2
        elif arg in ("--state", "--ctstate"):
            conds.append(Cond("ctstate", tuple(value.lower().split(",")), negate, arg))
            i += 2
        elif arg in ("-m", "--match"):
            i += 2  # the module's own options follow and are handled above or below
        elif arg in ("-j", "--jump", "-g", "--goto"):
            target = value
            if value == "ACCEPT":
                action = "accept"
            elif value in ("DROP", "REJECT"):
                action = "drop"
            elif value == "RETURN":
                action = "return"
            elif value in ("LOG", "NFLOG", "MARK", "CONNMARK", "CT", "NOTRACK", "TRACE"):
                action = "continue"
            else:
                action = "goto" if arg in ("-g", "--goto") else "jump"
            # the target's own options (--reject-with …) do not matter
            break
        elif arg.startswith("-"):
            skip = 2 if value and not value.startswith("-") else 1
            conds.append(Cond("other", text=" ".join(args[i : i + skip])))
            i += skip
        else:
            i += 1
        negate = False
    return Rule(tuple(conds), action, target, f"{where}: {text}")


def _ipt_port(value: str) -> Any:
    if ":" in value:
        lo, _, hi = value.partition(":")
        return (int(lo or 0), int(hi or 65535))
    return int(value) if value.isdigit() else value


def parse_iptables_save(text: str, *, label: str = "iptables") -> list[Chain]:
    """Chains of one ``iptables-save`` output that see incoming packets."""
    chains: list[Chain] = []
    current: dict[str, Chain] = {}
    table = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("*"):
            table = line[1:]
            current = {}
        elif line.startswith(":") and table in ("filter", "raw", "mangle"):
            name, policy = ([*line[1:].split(), "-"])[:2]
            hook = name.lower() if name in ("INPUT", "PREROUTING") else None
            chain = Chain(
                name=name,
                hook=hook,
                policy="drop" if policy == "DROP" else "accept",
                where=f"{label} {table} {name}",
            )
            current[name] = chain
            chains.append(chain)
        elif line.startswith("-A ") and table in ("filter", "raw", "mangle"):
            try:
                args = shlex.split(line)
            except ValueError:
                continue
            chain_opt = current.get(args[1])
            if chain_opt is not None:
                chain_opt.rules.append(_ipt_rule(args[2:], chain_opt.where, line))
    return chains
