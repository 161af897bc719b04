"""The project's RADIUS client: Access-Request probes, CoA and Disconnect (RFC 2865, 5176).

This is the only module (besides tests) that talks to pyrad. Promises:

* Attributes go in and come out by their dictionary names with dashes
  (``"User-Name"``, ``"Mikrotik-Rate-Limit"``), using the dictionary shipped in
  ``nas_adapters/dictionary/`` (no system package needed at runtime).
* A reply - Accept, Reject, ACK or NAK - is a normal return value (:class:`RadiusReply`);
  a NAK is *not* an exception.
* No valid answer (timeout, bad authenticator, socket failure) raises
  :class:`~nas_adapters.errors.TemporaryNasError`; nothing pyrad- or socket-specific
  escapes.
* Input that cannot be encoded (unknown attribute name, wrong value type, too long)
  raises :class:`ValueError` before anything is sent: that is a bug or bad data on our
  side, not something the NAS said.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
import os
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import pyrad.client
import pyrad.dictionary
import pyrad.packet
from pyrad import tools

from nas_adapters.errors import TemporaryNasError

__all__ = [
    "RadiusReply",
    "authenticate",
    "code_name",
    "decode_attributes",
    "load_dictionary",
    "send_coa",
    "send_disconnect",
]

#: Reply codes that mean "yes" for the request we sent.
_POSITIVE_CODES = frozenset(
    {pyrad.packet.AccessAccept, pyrad.packet.CoAACK, pyrad.packet.DisconnectACK}
)

_CODE_NAMES = {
    pyrad.packet.AccessRequest: "Access-Request",
    pyrad.packet.AccessAccept: "Access-Accept",
    pyrad.packet.AccessReject: "Access-Reject",
    pyrad.packet.AccessChallenge: "Access-Challenge",
    pyrad.packet.DisconnectRequest: "Disconnect-Request",
    pyrad.packet.DisconnectACK: "Disconnect-ACK",
    pyrad.packet.DisconnectNAK: "Disconnect-NAK",
    pyrad.packet.CoARequest: "CoA-Request",
    pyrad.packet.CoAACK: "CoA-ACK",
    pyrad.packet.CoANAK: "CoA-NAK",
}

# Data types decoded to int; everything else that pyrad can decode becomes a str.
_INT_TYPES = frozenset({"integer", "date", "short", "byte", "signed", "integer64"})


def code_name(code: int) -> str:
    """The RADIUS name of a packet code (``44`` -> ``"CoA-ACK"``), ``"Code-<n>"`` if unknown."""
    return _CODE_NAMES.get(code, f"Code-{code}")


@functools.cache
def load_dictionary() -> pyrad.dictionary.Dictionary:
    """Load the dictionary shipped in ``nas_adapters/dictionary/``; loaded once, then cached.

    The returned object is shared: treat it as read-only.
    """
    resource = importlib.resources.files("nas_adapters") / "dictionary" / "dictionary"
    with resource.open("r", encoding="utf-8") as fh:
        return pyrad.dictionary.Dictionary(fh)


@dataclass(frozen=True)
class RadiusReply:
    """A valid (authenticated) reply from a RADIUS server or NAS.

    ``accepted`` is True for Access-Accept, CoA-ACK and Disconnect-ACK. ``attributes``
    maps dictionary names to lists of values: integers (also enumerated ones such as
    Error-Cause) as ``int``, addresses and text as ``str``, binary values (Class, State,
    Message-Authenticator, non-UTF-8 strings) as ``"0x<hex>"``. Attributes missing from
    the dictionary appear as ``"Attr-<n>"`` / ``"Vendor-<v>-Attr-<n>"`` with hex values.
    """

    code: int
    accepted: bool
    attributes: dict[str, list[str | int]]

    @property
    def code_name(self) -> str:
        """The reply's RADIUS name, e.g. ``"CoA-NAK"``."""
        return code_name(self.code)

    @property
    def error_cause(self) -> int | None:
        """The first Error-Cause (RFC 5176, e.g. 503 Session-Context-Not-Found), if any."""
        values = self.attributes.get("Error-Cause")
        if not values or not isinstance(values[0], int):
            return None
        return values[0]


def authenticate(
    host: str,
    port: int,
    secret: str,
    username: str,
    password: str,
    *,
    nas_ip: str = "127.0.0.1",
    timeout: float = 2.0,
    retries: int = 1,
    extra: Mapping[str, object] | None = None,
    require_message_authenticator: bool = False,
    method: str = "pap",
) -> RadiusReply:
    """Send an Access-Request (with Message-Authenticator) and return the reply.

    ``method`` is ``pap`` (User-Password) or ``chap`` (CHAP-Password and CHAP-Challenge,
    as a PPPoE server sends for a CHAP login).

    Meant for tests and the CLI's "radius test". ``retries`` is the number of sends in
    total (pyrad's meaning), each waiting ``timeout`` seconds. ``extra`` adds request
    attributes by name (e.g. ``{"Service-Type": "Framed-User"}``). With
    ``require_message_authenticator`` a reply without a Message-Authenticator is treated
    like no reply, which is what RouterOS 7.15+ does by default; otherwise its presence
    can be checked in ``attributes``.

    Raises TemporaryNasError when no valid reply arrives, ValueError for bad input.
    """
    dictionary = load_dictionary()
    client = _client(
        host,
        secret,
        dictionary,
        timeout,
        retries,
        authport=port,
        enforce_ma=require_message_authenticator,
    )
    # message_authenticator=True: every Access-Request we send is signed (BlastRADIUS).
    request = client.CreateAuthPacket(code=pyrad.packet.AccessRequest, message_authenticator=True)
    _add_attributes(request, {"User-Name": username, "NAS-IP-Address": nas_ip, **(extra or {})})
    if method == "chap":
        ident, challenge = os.urandom(1), os.urandom(16)
        digest = hashlib.md5(ident + password.encode("utf-8") + challenge).digest()
        request["CHAP-Challenge"] = challenge
        request["CHAP-Password"] = ident + digest
    elif method == "pap":
        try:
            request["User-Password"] = request.PwCrypt(password)
        except ValueError as exc:  # longer than 128 octets
            raise ValueError(f"cannot encode User-Password: {exc}") from exc
    else:
        raise ValueError(f"method must be pap or chap, not {method!r}")
    return _exchange(client, request, host, port)


def send_coa(
    host: str,
    port: int,
    secret: str,
    attributes: Mapping[str, object],
    *,
    timeout: float = 2.0,
    retries: int = 2,
) -> RadiusReply:
    """Send a CoA-Request (code 43) to a NAS's dynamic-authorization port.

    ``attributes`` identify the session (User-Name, Acct-Session-Id, Framed-IP-Address)
    and carry the change (e.g. Mikrotik-Rate-Limit). CoA-ACK -> ``accepted=True``;
    CoA-NAK -> ``accepted=False`` with the NAS's Error-Cause in ``attributes``.
    Raises TemporaryNasError when no valid reply arrives, ValueError for bad input.
    """
    return _send_dynamic(pyrad.packet.CoARequest, host, port, secret, attributes, timeout, retries)


def send_disconnect(
    host: str,
    port: int,
    secret: str,
    attributes: Mapping[str, object],
    *,
    timeout: float = 2.0,
    retries: int = 2,
) -> RadiusReply:
    """Send a Disconnect-Request (code 40); same contract as :func:`send_coa`."""
    return _send_dynamic(
        pyrad.packet.DisconnectRequest, host, port, secret, attributes, timeout, retries
    )


def decode_attributes(packet: pyrad.packet.Packet) -> dict[str, list[str | int]]:
    """A packet's attributes as ``{name: [values]}``, decoded as described in RadiusReply."""
    # Decode from the raw (code -> [bytes]) storage rather than through pyrad's
    # __getitem__, which would turn enumerated integers into VALUE names
    # (Error-Cause 503 -> "Session-Context-Not-Found"); callers compare numbers.
    dictionary = packet.dict
    result: dict[str, list[str | int]] = {}
    for key, raw_values in OrderedDict.items(packet):
        known = dictionary.attrindex.HasBackward(key) and isinstance(raw_values, list)
        if not known:
            result.setdefault(_unknown_name(key), []).extend(
                _hex(v) for v in raw_values if isinstance(v, bytes)
            )
            continue
        name = dictionary.attrindex.GetBackward(key)
        datatype = dictionary.attributes[name].type
        result.setdefault(name, []).extend(_decode_value(datatype, v) for v in raw_values)
    return result


# --------------------------------------------------------------------------- internals


def _send_dynamic(
    code: int,
    host: str,
    port: int,
    secret: str,
    attributes: Mapping[str, object],
    timeout: float,
    retries: int,
) -> RadiusReply:
    client = _client(host, secret, load_dictionary(), timeout, retries, coaport=port)
    request = client.CreateCoAPacket(code=code)
    _add_attributes(request, attributes)
    return _exchange(client, request, host, port)


def _client(
    host: str,
    secret: str,
    dictionary: pyrad.dictionary.Dictionary,
    timeout: float,
    retries: int,
    *,
    authport: int = 1812,
    coaport: int = 3799,
    enforce_ma: bool = False,
) -> pyrad.client.Client:
    if retries < 1:
        # pyrad would "send" zero times and report a timeout, which looks like a dead NAS.
        raise ValueError(f"retries is the number of sends and must be >= 1, got {retries}")
    if not secret:
        raise ValueError("an empty RADIUS secret is not allowed")
    return pyrad.client.Client(
        server=host,
        authport=authport,
        coaport=coaport,
        secret=secret.encode("utf-8"),  # pyrad refuses str secrets
        dict=dictionary,
        retries=retries,
        timeout=timeout,
        enforce_ma=enforce_ma,
    )


def _add_attributes(packet: pyrad.packet.Packet, attributes: Mapping[str, object]) -> None:
    """Add attributes by name; a list/tuple value adds the attribute once per item."""
    for name, value in attributes.items():
        if name not in packet.dict.attributes:
            raise ValueError(f"unknown RADIUS attribute {name!r} (not in the shipped dictionary)")
        values: Iterable[object] = value if isinstance(value, list | tuple) else [value]
        for item in values:
            try:
                packet.AddAttribute(name, item)
            except (TypeError, ValueError, KeyError, OSError) as exc:
                # OSError: inet_aton on a malformed address.
                raise ValueError(f"cannot encode {name}={item!r}: {exc}") from exc


def _exchange(
    client: pyrad.client.Client, request: pyrad.packet.Packet, host: str, port: int
) -> RadiusReply:
    what = code_name(request.code)
    try:
        reply = client.SendPacket(request)
    except pyrad.client.Timeout:
        raise TemporaryNasError(
            f"no valid reply to {what} on port {port} after {client.retries} send(s) "
            f"of {client.timeout:g}s (down, wrong port or wrong secret?)",
            nas=host,
        ) from None
    except OSError as exc:  # unresolvable name, unreachable network, ...
        raise TemporaryNasError(f"{what} to port {port} failed: {exc}", nas=host) from exc
    finally:
        client._CloseSocket()  # pyrad keeps the socket open otherwise; one client per call
    return RadiusReply(
        code=reply.code,
        accepted=reply.code in _POSITIVE_CODES,
        attributes=decode_attributes(reply),
    )


def _decode_value(datatype: str, raw: bytes) -> str | int:
    if datatype == "octets":
        return _hex(raw)
    if datatype == "string":
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return _hex(raw)
    try:
        value = tools.DecodeAttr(datatype, raw)
    except Exception:  # malformed value from the peer: keep it visible, don't fail the reply
        return _hex(raw)
    if datatype in _INT_TYPES:
        return int(value)
    return value if isinstance(value, str) else str(value)


def _unknown_name(key: object) -> str:
    if isinstance(key, tuple) and len(key) == 2:
        return f"Vendor-{key[0]}-Attr-{key[1]}"
    return f"Attr-{key}"


def _hex(raw: bytes) -> str:
    return "0x" + raw.hex()
