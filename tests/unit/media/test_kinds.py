import io

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from PIL import Image

from gridwork_common.errors import InvalidInput
from services.media.domain.kinds import (
    CONTENT_TYPES_BY_KIND,
    KINDS,
    MIB,
    PURPOSES,
    SNIFF_BYTES,
    check_bytes,
    check_declared,
    size_limits,
    sniff,
)

# ------------------------------------------------------------------------ sample headers


def picture(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), "green").save(out, fmt)
    return out.getvalue()


def ftyp(major: bytes, *compatible: bytes, minor: int = 0) -> bytes:
    """An ISO BMFF `ftyp` box, followed by the start of the next box as in a real file."""
    body = major + minor.to_bytes(4, "big") + b"".join(compatible)
    return (8 + len(body)).to_bytes(4, "big") + b"ftyp" + body + b"\x00\x00\x00\x08free"


def adts(*, mpeg2: bool = False, crc: bool = False, sampling_index: int = 4, length: int = 371):
    """An ADTS frame header (AAC LC, stereo) and the start of its payload."""
    second = 0xF0 | (0x08 if mpeg2 else 0) | (0 if crc else 0x01)
    profile, channels = 1, 2
    return bytes(
        [
            0xFF,
            second,
            (profile << 6) | (sampling_index << 2) | (channels >> 2),
            ((channels & 0x03) << 6) | (length >> 11),
            (length >> 3) & 0xFF,
            ((length & 0x07) << 5) | 0x1F,
            0xFC,
        ]
    ) + bytes(range(32))


JPEG = picture("JPEG")
PNG = picture("PNG")
WEBP = picture("WEBP")
MP4 = ftyp(b"isom", b"isom", b"iso2", b"avc1", b"mp41", minor=0x200)
MP4_MP42 = ftyp(b"mp42", b"mp42", b"isom")  # Android's recorder writes this for video and audio
MP4_3GP = ftyp(b"3gp4", b"isom", b"3gp4")
M4A = ftyp(b"M4A ", b"M4A ", b"mp42", b"isom", b"\x00\x00\x00\x00")
M4B = ftyp(b"M4B ", b"M4B ", b"mp42", b"isom")
HEIC = ftyp(b"heic", b"mif1", b"heic")
HEIF_MIF1 = ftyp(b"mif1", b"mif1", b"heic")
AAC = adts()
AMR = b"#!AMR\n" + b"\x3c\x48\xf5\x1f" * 8
AMR_WB = b"#!AMR-WB\n" + b"\x24\x50\x00\x00" * 8

SAMPLES = {
    "image/jpeg": [JPEG],
    "image/png": [PNG],
    "image/webp": [WEBP],
    "image/heic": [HEIC, HEIF_MIF1, ftyp(b"heix", b"mif1", b"heix"), ftyp(b"msf1", b"hevc")],
    "video/mp4": [MP4, MP4_MP42, MP4_3GP, ftyp(b"dash", b"iso6"), ftyp(b"MSNV", b"MSNV")],
    "audio/mp4": [M4A, M4B],
    "audio/aac": [AAC, adts(mpeg2=True), adts(crc=True), adts(sampling_index=11)],
    "audio/amr": [AMR, AMR_WB],
}

NOT_SUPPORTED = {
    "pdf": b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n",
    "text": "网格员巡查记录：一切正常。\n".encode(),
    "empty": b"",
    "gif": b"GIF89a\x08\x00\x08\x00\x80\x00\x00" + b"\x00" * 24,
    "zip": b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"\x00" * 24,
    "elf": b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 24,
    "wav": b"RIFF\x24\x08\x00\x00WAVEfmt \x10\x00\x00\x00" + b"\x00" * 16,
    "mp3 frame": b"\xff\xfb\x90\x64" + b"\x00" * 28,
    "mp3 with ID3": b"ID3\x04\x00\x00\x00\x00\x00\x23" + b"\x00" * 22,
    "tiff": b"II*\x00\x08\x00\x00\x00" + b"\x00" * 24,
    "quicktime": ftyp(b"qt  ", b"qt  "),
    "avif": ftyp(b"avif", b"avif", b"mif1", b"miaf"),
    "ftyp of unknown brands": ftyp(b"abcd", b"efgh"),
    "ftyp box too short": b"\x00\x00\x00\x08ftypisom" + b"\x00" * 20,
    "truncated jpeg signature": b"\xff\xd8",
    "riff without webp": b"RIFF\x00\x00\x00\x00AVI LIST" + b"\x00" * 16,
    "adts with reserved sampling rate": adts(sampling_index=13),
    "adts frame shorter than its header": adts(length=5),
    "amr without newline": b"#!AMR-NB" + b"\x00" * 24,
}


# ------------------------------------------------------------------------------- the kinds


def test_every_type_has_a_kind_and_a_default_limit():
    assert set(KINDS) == set(SAMPLES)
    assert {ct: (k.kind, k.max_size) for ct, k in KINDS.items()} == {
        "image/jpeg": ("photo", 20 * MIB),
        "image/png": ("photo", 20 * MIB),
        "image/webp": ("photo", 20 * MIB),
        "image/heic": ("photo", 20 * MIB),
        "video/mp4": ("video", 200 * MIB),
        "audio/aac": ("audio", 20 * MIB),
        "audio/mp4": ("audio", 20 * MIB),
        "audio/amr": ("audio", 20 * MIB),
    }
    assert all(k.content_type == ct for ct, k in KINDS.items())
    assert CONTENT_TYPES_BY_KIND["video"] == ("video/mp4",)
    assert set(CONTENT_TYPES_BY_KIND["photo"]) == {
        "image/jpeg",
        "image/png",
        "image/webp",
        "image/heic",
    }


def test_purposes():
    assert PURPOSES == ("incident_report", "feedback", "verification", "visit", "record")


# -------------------------------------------------------------------------------- sniffing


@pytest.mark.parametrize(
    ("content_type", "head"),
    [(ct, head) for ct, heads in SAMPLES.items() for head in heads],
)
def test_sniff_recognises_each_supported_type(content_type, head):
    assert sniff(head[:SNIFF_BYTES]) == content_type
    assert sniff(head) == content_type


@pytest.mark.parametrize("head", NOT_SUPPORTED.values(), ids=NOT_SUPPORTED.keys())
def test_sniff_refuses_everything_else(head):
    assert sniff(head) is None


def test_sniff_looks_at_compatible_brands_when_the_major_brand_is_unknown():
    assert sniff(ftyp(b"abcd", b"wxyz", b"mif1")) == "image/heic"
    assert sniff(ftyp(b"abcd", b"isom", b"M4A ")) == "audio/mp4"
    assert sniff(ftyp(b"f4v ", b"isom", b"mp42")) == "video/mp4"


def test_sniff_reads_compatible_brands_only_inside_the_ftyp_box():
    box = (16).to_bytes(4, "big") + b"ftypabcd\x00\x00\x00\x00"
    assert sniff(box + b"\x00\x00\x00\x08mif1") is None


def test_sniff_reads_a_long_ftyp_box_past_the_first_32_bytes():
    brands = [b"ab%02d" % i for i in range(10)]
    assert sniff(ftyp(b"abcd", *brands, b"heic")) == "image/heic"


def _shows_a_signature(head: bytes) -> bool:
    return (
        head.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"#!AMR"))
        or head[:4] == b"RIFF"
        or head[4:8] == b"ftyp"
        or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0)
    )


@settings(max_examples=300)
@given(st.binary(max_size=64))
def test_bytes_without_a_known_signature_are_no_supported_type(head):
    assume(not _shows_a_signature(head))
    assert sniff(head) is None


_KNOWN_BRANDS = {
    b"heic",
    b"heix",
    b"hevc",
    b"heim",
    b"heis",
    b"mif1",
    b"msf1",
    b"M4A ",
    b"M4B ",
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
}
brand = st.binary(min_size=4, max_size=4).filter(lambda b: b not in _KNOWN_BRANDS)


@given(brand, st.lists(brand, max_size=6))
def test_ftyp_boxes_of_unknown_brands_are_no_supported_type(major, compatible):
    assert sniff(ftyp(major, *compatible)) is None


@given(st.sampled_from(sorted(SAMPLES)), st.data())
def test_what_follows_the_signature_does_not_matter(content_type, data):
    head = data.draw(st.sampled_from(SAMPLES[content_type]))
    assert sniff(head + data.draw(st.binary(max_size=64))) == content_type


# ----------------------------------------------------------------------------- size limits


def test_size_limits_default_to_the_kinds():
    defaults = {ct: k.max_size for ct, k in KINDS.items()}
    assert size_limits() == defaults
    assert size_limits(None) == defaults
    assert size_limits({}) == defaults


def test_size_limits_overridden_by_content_type_and_by_kind():
    limits = size_limits({"photo": 10 * MIB, "image/png": 5 * MIB, "video/mp4": 500 * MIB})
    assert limits["image/jpeg"] == limits["image/webp"] == limits["image/heic"] == 10 * MIB
    assert limits["image/png"] == 5 * MIB  # the content type's own override wins
    assert limits["video/mp4"] == 500 * MIB
    assert limits["audio/aac"] == 20 * MIB
    assert KINDS["image/png"].max_size == 20 * MIB  # the defaults are left alone


@pytest.mark.parametrize("key", ["application/pdf", "image/jpg", "photos", ""])
def test_size_limits_refuse_unknown_keys(key):
    with pytest.raises(InvalidInput) as raised:
        size_limits({key: MIB})
    assert raised.value.field == "size_limits"
    assert repr(key) in raised.value.problem


@pytest.mark.parametrize("value", [0, -1, True, 1.5, "1048576", None])
def test_size_limits_refuse_values_that_are_not_positive_byte_counts(value):
    with pytest.raises(InvalidInput) as raised:
        size_limits({"image/jpeg": value})
    assert raised.value.field == "size_limits"
    assert raised.value.problem == "image/jpeg: must be a positive number of bytes"


# -------------------------------------------------------------------------- check_declared


@pytest.mark.parametrize("content_type", sorted(KINDS))
def test_check_declared_accepts_supported_types_up_to_their_limit(content_type):
    check_declared(content_type, 1, size_limits())
    check_declared(content_type, KINDS[content_type].max_size, size_limits())
    check_declared(content_type, KINDS[content_type].max_size)  # defaults without limits


@pytest.mark.parametrize(
    "content_type", ["application/pdf", "image/jpg", "IMAGE/JPEG", "text/plain", "", None]
)
def test_check_declared_refuses_unsupported_types(content_type):
    with pytest.raises(InvalidInput) as raised:
        check_declared(content_type, 100, size_limits())
    assert raised.value.field == "content_type"
    assert raised.value.problem.startswith(f"{content_type!r} is not a supported type")
    assert "image/jpeg" in raised.value.problem


@pytest.mark.parametrize("size", [0, -1, True, 1.5, "100", None])
def test_check_declared_refuses_sizes_that_are_not_positive(size):
    with pytest.raises(InvalidInput) as raised:
        check_declared("image/jpeg", size, size_limits())
    assert raised.value.field == "size"
    assert raised.value.problem == "must be a positive number of bytes"


def test_check_declared_refuses_sizes_over_the_limit():
    with pytest.raises(InvalidInput) as raised:
        check_declared("image/jpeg", 20 * MIB + 1, size_limits())
    assert raised.value.field == "size"
    assert raised.value.problem == (
        "20971521 bytes is too large: at most 20971520 bytes for image/jpeg"
    )
    check_declared("video/mp4", 200 * MIB, size_limits())
    with pytest.raises(InvalidInput, match=r"at most 209715200 bytes for video/mp4"):
        check_declared("video/mp4", 200 * MIB + 1, size_limits())


def test_check_declared_uses_the_configured_limits():
    limits = size_limits({"audio/amr": 1000})
    check_declared("audio/amr", 1000, limits)
    with pytest.raises(
        InvalidInput, match=r"^size: 1001 bytes .* at most 1000 bytes for audio/amr$"
    ):
        check_declared("audio/amr", 1001, limits)


# ----------------------------------------------------------------------------- check_bytes


@pytest.mark.parametrize(
    ("content_type", "head"),
    [(ct, heads[0]) for ct, heads in SAMPLES.items()],
)
def test_check_bytes_accepts_what_was_declared(content_type, head):
    check_bytes(content_type, 5000, 5000, head[:SNIFF_BYTES], size_limits())


def test_check_bytes_refuses_another_size_than_declared():
    with pytest.raises(InvalidInput) as raised:
        check_bytes("image/jpeg", 5000, 4999, JPEG, size_limits())
    assert raised.value.field == "size"
    assert raised.value.problem == "declared 5000 bytes, received 4999"


def test_check_bytes_refuses_bytes_of_another_type():
    with pytest.raises(InvalidInput) as raised:
        check_bytes("image/jpeg", 5000, 5000, PNG, size_limits())
    assert raised.value.field == "content_type"
    assert raised.value.problem == "declared image/jpeg but the bytes are image/png"
    with pytest.raises(InvalidInput, match="declared video/mp4 but the bytes are image/heic"):
        check_bytes("video/mp4", 5000, 5000, HEIC, size_limits())


@pytest.mark.parametrize("head", NOT_SUPPORTED.values(), ids=NOT_SUPPORTED.keys())
def test_check_bytes_refuses_bytes_of_no_supported_type(head):
    with pytest.raises(InvalidInput) as raised:
        check_bytes("image/jpeg", 5000, 5000, head, size_limits())
    assert raised.value.field == "content_type"
    assert raised.value.problem == "declared image/jpeg but the bytes are not a supported type"


def test_check_bytes_accepts_audio_in_a_generic_mpeg4_container():
    # An Android voice recording (.m4a) carries the brands "mp42" and "isom", like a video.
    check_bytes("audio/mp4", 5000, 5000, MP4_MP42, size_limits())
    # A file whose brand says audio is not a video, though.
    with pytest.raises(InvalidInput, match="declared video/mp4 but the bytes are audio/mp4"):
        check_bytes("video/mp4", 5000, 5000, M4A, size_limits())


def test_check_bytes_refuses_sizes_over_the_limit():
    limits = size_limits({"photo": 4000})
    with pytest.raises(InvalidInput) as raised:
        check_bytes("image/webp", 5000, 5000, WEBP, limits)
    assert raised.value.field == "size"
    assert raised.value.problem == "5000 bytes is too large: at most 4000 bytes for image/webp"


def test_check_bytes_refuses_empty_objects():
    with pytest.raises(InvalidInput) as raised:
        check_bytes("image/jpeg", 0, 0, JPEG, size_limits())
    assert raised.value.field == "size"


def test_check_bytes_refuses_an_unsupported_declared_type():
    with pytest.raises(InvalidInput) as raised:
        check_bytes("application/pdf", 100, 100, NOT_SUPPORTED["pdf"], size_limits())
    assert raised.value.field == "content_type"
    assert "'application/pdf' is not a supported type" in raised.value.problem
