"""Signed requests for ``firecore-wizard status``: Ed25519 (RFC 8032) in plain Python.

Why signatures and not the bearer token: everything on the Pi came over TFTP, which anyone on
the LAN can read, so the Pi holds no secret and cannot prove who it is. A client that sent the
token to whatever announces ``_firecore._tcp`` would hand it to any host that announces itself.
So ``status`` never sends the token: it asks the Pi for a fresh nonce
(``GET /firecore/challenge``) and signs ``firecore-sig-v1`` + the nonce + the method and path +
the Pi's serial and build id with a key derived from the token (``seed_of``). The Pi holds only
the public key (``FIRECORE_TOKEN_PUBKEY`` in app.env, fine to publish). A signature is good for
one request, on one Pi, once: a stranger who collects one has nothing to reuse.

Verification and signing are written out from the RFC's definitions (section 5.1) with Python
integers and hashlib: no wheel is needed on the Pi (armv6 included); a verification takes a few
milliseconds on a PC and well under a second on a Pi Zero. Nothing secret is ever handled on the
Pi (it only verifies), so constant-time arithmetic is not needed there. Python 3.8 compatible.
"""

import hashlib
from typing import Optional, Tuple

Point = Tuple[int, int, int, int]  # extended coordinates: x = X/Z, y = Y/Z, x*y = T/Z

SCHEME = "Firecore-Sig"
CONTEXT = b"firecore-sig-v1"
_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493
_D = (-121665 * pow(121666, _P - 2, _P)) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)


def _inv(x: int) -> int:
    return pow(x, _P - 2, _P)


def _add(p: Point, q: Point) -> Point:
    """Point addition on edwards25519 (RFC 8032 5.1.4; complete, so it also doubles)."""
    a = (p[1] - p[0]) * (q[1] - q[0]) % _P
    b = (p[1] + p[0]) * (q[1] + q[0]) % _P
    c = 2 * p[3] * q[3] * _D % _P
    d = 2 * p[2] * q[2] % _P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _mul(scalar: int, point: Point) -> Point:
    result: Point = (0, 1, 1, 0)
    while scalar > 0:
        if scalar & 1:
            result = _add(result, point)
        point = _add(point, point)
        scalar >>= 1
    return result


def _same(p: Point, q: Point) -> bool:
    return (p[0] * q[2] - q[0] * p[2]) % _P == 0 and (p[1] * q[2] - q[1] * p[2]) % _P == 0


def _x_of(y: int, sign: int) -> Optional[int]:
    """The x with the given low bit for y (RFC 8032 5.1.3), None when there is none."""
    if y >= _P:
        return None
    x2 = (y * y - 1) * _inv(_D * y * y + 1) % _P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P:
        x = x * _SQRT_M1 % _P
    if (x * x - x2) % _P:
        return None
    return _P - x if (x & 1) != sign else x


_BY = 4 * _inv(5) % _P
_BX = _x_of(_BY, 0) or 0
_BASE: Point = (_BX, _BY, 1, _BX * _BY % _P)


def _encode(p: Point) -> bytes:
    zinv = _inv(p[2])
    x, y = p[0] * zinv % _P, p[1] * zinv % _P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def _decode(data: bytes) -> Optional[Point]:
    if len(data) != 32:
        return None
    y = int.from_bytes(data, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    x = _x_of(y, sign)
    return None if x is None else (x, y, 1, x * y % _P)


def _hash_int(*parts: bytes) -> int:
    return int.from_bytes(hashlib.sha512(b"".join(parts)).digest(), "little")


def _expand(seed: bytes) -> Tuple[int, bytes]:
    digest = hashlib.sha512(seed).digest()
    scalar = int.from_bytes(digest[:32], "little")
    scalar &= (1 << 254) - 8
    scalar |= 1 << 254
    return scalar, digest[32:]


def seed_of(token: str) -> bytes:
    """The 32-byte private key derived from the bearer token (never leaves the client)."""
    return hashlib.sha256(CONTEXT + b"\0" + token.encode("utf-8")).digest()


def public_key(seed: bytes) -> bytes:
    """The 32-byte public key of ``seed``."""
    return _encode(_mul(_expand(seed)[0], _BASE))


def sign(seed: bytes, message: bytes) -> bytes:
    """The 64-byte Ed25519 signature of ``message`` (RFC 8032 5.1.6)."""
    scalar, prefix = _expand(seed)
    public = _encode(_mul(scalar, _BASE))
    r = _hash_int(prefix, message) % _L
    big_r = _encode(_mul(r, _BASE))
    s = (r + _hash_int(big_r, public, message) % _L * scalar) % _L
    return big_r + s.to_bytes(32, "little")


def verify(public: bytes, message: bytes, signature: bytes) -> bool:
    """True when ``signature`` is ``public``'s signature of ``message`` (RFC 8032 5.1.7)."""
    if len(public) != 32 or len(signature) != 64:
        return False
    a = _decode(public)
    r = _decode(signature[:32])
    s = int.from_bytes(signature[32:], "little")
    if a is None or r is None or s >= _L:
        return False
    h = _hash_int(signature[:32], public, message) % _L
    return _same(_mul(s, _BASE), _add(r, _mul(h, a)))


def message(nonce: str, method: str, path: str, serial: str, build_id: str) -> bytes:
    """What is signed for one request: bound to the nonce, the request and the Pi."""
    return b"\n".join(
        part.encode("utf-8") for part in (CONTEXT.decode(), nonce, method, path, serial, build_id)
    )


def header(seed: bytes, nonce: str, method: str, path: str, serial: str, build_id: str) -> str:
    """The ``Authorization`` header value for one request."""
    sig = sign(seed, message(nonce, method, path, serial, build_id)).hex()
    return f"{SCHEME} nonce={nonce},sig={sig}"


def parse_header(value: Optional[str]) -> Optional[Tuple[str, bytes]]:
    """(nonce, signature) of a ``Firecore-Sig`` Authorization header, else None."""
    if not value:
        return None
    scheme, _, rest = value.strip().partition(" ")
    if scheme != SCHEME:
        return None
    fields = dict(part.partition("=")[::2] for part in rest.split(","))
    nonce, sig = fields.get("nonce", ""), fields.get("sig", "")
    if len(nonce) != 32 or len(sig) != 128:
        return None
    try:
        int(nonce, 16)
        return nonce, bytes.fromhex(sig)
    except ValueError:
        return None
