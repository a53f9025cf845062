"""What may be uploaded: the content types the media service accepts, their size limits, and
how a file's type is recognised from its first bytes (magic numbers), never from its name.

An upload is checked twice. Before any byte is sent, `check_declared` refuses a declared type
or size the service does not take. Once the object is stored, `check_bytes` compares what
arrived with what was declared: the size must match and the bytes must show the declared type,
so a renamed executable or a PDF labelled "image/jpeg" never becomes evidence.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from gridwork_common.errors import InvalidInput

MIB = 1024 * 1024

# What an upload is for; the service stores it with the media record.
PURPOSES = ("incident_report", "feedback", "verification", "visit", "record")

# How many leading bytes `sniff` needs to recognise every supported type.
SNIFF_BYTES = 32


@dataclass(frozen=True)
class Kind:
    content_type: str
    kind: str  # "photo", "video" or "audio"
    max_size: int  # default limit in bytes; configuration may override it


def _kinds(*kinds: Kind) -> Mapping[str, Kind]:
    return MappingProxyType({k.content_type: k for k in kinds})


KINDS: Mapping[str, Kind] = _kinds(
    # Photos
    Kind("image/jpeg", "photo", 20 * MIB),
    Kind("image/png", "photo", 20 * MIB),
    Kind("image/webp", "photo", 20 * MIB),
    Kind("image/heic", "photo", 20 * MIB),
    # Video
    Kind("video/mp4", "video", 200 * MIB),
    # Audio: ADTS AAC, AAC in an MPEG-4 container (M4A), AMR voice recordings
    Kind("audio/aac", "audio", 20 * MIB),
    Kind("audio/mp4", "audio", 20 * MIB),
    Kind("audio/amr", "audio", 20 * MIB),
)

KIND_NAMES = ("photo", "video", "audio")

CONTENT_TYPES_BY_KIND: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {name: tuple(ct for ct, k in KINDS.items() if k.kind == name) for name in KIND_NAMES}
)

# Bytes whose type the service cannot tell apart from a related one. Many recorders (Android's
# among them) write audio-only MPEG-4 files with the generic brands "isom" or "mp42", which the
# bytes cannot distinguish from a video: an upload declared audio/mp4 may show video/mp4.
_ALSO_ACCEPTED = MappingProxyType({"audio/mp4": frozenset({"video/mp4"})})

# ------------------------------------------------------------------------------- sniffing

_JPEG = b"\xff\xd8\xff"
_PNG = b"\x89PNG\r\n\x1a\n"
_AMR = (b"#!AMR\n", b"#!AMR-WB\n")

# ISO base media file format (MPEG-4 part 12): brands in the leading `ftyp` box.
_BRANDS: Mapping[bytes, str] = MappingProxyType(
    {
        **dict.fromkeys(
            (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"), "image/heic"
        ),
        **dict.fromkeys((b"M4A ", b"M4B "), "audio/mp4"),
        **dict.fromkeys(
            (
                b"isom",
                b"iso2",
                b"iso3",
                b"iso4",
                b"iso5",
                b"iso6",
                b"mp41",
                b"mp42",
                b"avc1",
                b"3gp4",
                b"3gp5",
                b"dash",
                b"MSNV",
            ),
            "video/mp4",
        ),
    }
)
# Major brands of other formats in the same container, which also list brands above as
# compatible ones (an AVIF image lists "mif1", a QuickTime movie may list "isom").
_FOREIGN_MAJOR_BRANDS = frozenset({b"avif", b"avis", b"qt  ", b"crx "})
# When only compatible brands are known, the most specific wins: "isom" is listed by all.
_BRAND_PRECEDENCE = ("image/heic", "audio/mp4", "video/mp4")


def sniff(head: bytes) -> str | None:
    """The supported content type the first bytes of a file show (give at least the first
    `SNIFF_BYTES`), or None when they show no supported type."""
    head = bytes(head)
    if head.startswith(_JPEG):
        return "image/jpeg"
    if head.startswith(_PNG):
        return "image/png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp":
        return _iso_media_type(head)
    if head.startswith(_AMR):
        return "audio/amr"
    if _is_adts(head):
        return "audio/aac"
    return None


def _iso_media_type(head: bytes) -> str | None:
    box_size = int.from_bytes(head[:4], "big")
    if box_size < 16 or len(head) < 12:  # size, "ftyp", major brand, minor version
        return None
    major = head[8:12]
    if major in _BRANDS:
        return _BRANDS[major]
    if major in _FOREIGN_MAJOR_BRANDS:
        return None
    end = min(box_size, len(head))
    compatible = {_BRANDS.get(head[i : i + 4]) for i in range(16, end - 3, 4)}
    return next((ct for ct in _BRAND_PRECEDENCE if ct in compatible), None)


def _is_adts(head: bytes) -> bool:
    """An ADTS frame header: 12-bit sync 0xFFF, layer 00 (MP3 frames have another layer), a
    valid sampling frequency index and a frame length no shorter than the header."""
    if len(head) < 7 or head[0] != 0xFF or head[1] & 0xF6 != 0xF0:
        return False
    sampling_index = (head[2] >> 2) & 0x0F
    header_length = 7 if head[1] & 0x01 else 9  # protection_absent = 0: a CRC follows
    frame_length = ((head[3] & 0x03) << 11) | (head[4] << 3) | (head[5] >> 5)
    return sampling_index < 13 and frame_length >= header_length


# ----------------------------------------------------------------------------- size limits


def size_limits(overrides: Mapping[str, int] | None = None) -> dict[str, int]:
    """The maximum size in bytes of each content type: the defaults in `KINDS`, overridden
    from configuration. An override is keyed by content type ("image/jpeg") or by kind
    ("photo", applying to every type of the kind); a content type's own override wins."""
    limits = {ct: k.max_size for ct, k in KINDS.items()}
    if not overrides:
        return limits
    for key, value in overrides.items():
        if key not in KINDS and key not in KIND_NAMES:
            raise InvalidInput(
                "size_limits",
                f"{key!r} is neither a supported content type nor a kind ({', '.join(KIND_NAMES)})",
            )
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise InvalidInput("size_limits", f"{key}: must be a positive number of bytes")
    for key, value in overrides.items():
        if key in KIND_NAMES:
            limits.update(dict.fromkeys(CONTENT_TYPES_BY_KIND[key], value))
    for key, value in overrides.items():
        if key in KINDS:
            limits[key] = value
    return limits


# -------------------------------------------------------------------------------- checks


def check_declared(content_type: str, size: int, limits: Mapping[str, int] | None = None) -> None:
    """Refuse an upload before it starts: a type the service does not take, or a size that is
    not positive or over the type's limit (`limits` from `size_limits`; defaults if None)."""
    _check_supported(content_type)
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise InvalidInput("size", "must be a positive number of bytes")
    _check_limit(content_type, size, limits)


def check_bytes(
    declared_type: str,
    declared_size: int,
    actual_size: int,
    head: bytes,
    limits: Mapping[str, int] | None = None,
) -> None:
    """Refuse a stored object that is not what was declared: a size other than the declared
    one, first bytes (`head`, at least the first `SNIFF_BYTES`) showing another type or no
    supported type, or a size over the type's limit."""
    _check_supported(declared_type)
    if actual_size != declared_size:
        raise InvalidInput("size", f"declared {declared_size} bytes, received {actual_size}")
    shown = sniff(head)
    if shown is None:
        raise InvalidInput(
            "content_type", f"declared {declared_type} but the bytes are not a supported type"
        )
    if shown != declared_type and shown not in _ALSO_ACCEPTED.get(declared_type, ()):
        raise InvalidInput("content_type", f"declared {declared_type} but the bytes are {shown}")
    if actual_size <= 0:
        raise InvalidInput("size", "must be a positive number of bytes")
    _check_limit(declared_type, actual_size, limits)


def _check_supported(content_type: str) -> None:
    if not isinstance(content_type, str) or content_type not in KINDS:
        raise InvalidInput(
            "content_type",
            f"{content_type!r} is not a supported type; supported: {', '.join(KINDS)}",
        )


def _check_limit(content_type: str, size: int, limits: Mapping[str, int] | None) -> None:
    limit = (limits or {}).get(content_type, KINDS[content_type].max_size)
    if size > limit:
        raise InvalidInput(
            "size", f"{size} bytes is too large: at most {limit} bytes for {content_type}"
        )


# How long stored media are kept, by purpose (days); a county may shorten or lengthen it.
DEFAULT_RETENTION_DAYS = {
    "incident_report": 1825,
    "feedback": 1825,
    "verification": 1825,
    "visit": 1095,
    "record": 3650,
}


def parse_pairs(text: str, field: str) -> dict[str, int]:
    """ "a=1,b=2" from configuration as {"a": 1, "b": 2}, naming the setting when wrong."""
    pairs: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, _, value = item.partition("=")
        try:
            pairs[key.strip()] = int(value)
        except ValueError:
            raise InvalidInput(field, f"{item!r} is not name=number") from None
    return pairs


def retention_days(overrides: Mapping[str, int] | None = None) -> dict[str, int]:
    days = dict(DEFAULT_RETENTION_DAYS)
    for purpose, value in (overrides or {}).items():
        if purpose not in days or value <= 0:
            raise InvalidInput("retention_days", f"{purpose}: a purpose and a positive number")
        days[purpose] = value
    return days
