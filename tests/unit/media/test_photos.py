import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, TiffImagePlugin
from PIL.ExifTags import GPS, IFD, Base

from gridwork_common.errors import InvalidInput
from services.media.domain.photos import METADATA_KEYS, photo_metadata, thumbnail

Rational = TiffImagePlugin.IFDRational

# A village square in Shuangliu, Chengdu (WGS 84).
LAT, LON = 30.574561, 103.923681
RED, BLUE = (220, 20, 20), (20, 20, 220)


def dms(degrees: float) -> tuple[Rational, Rational, Rational]:
    """Decimal degrees as EXIF writes them: whole degrees, whole minutes, seconds to 1e-4."""
    whole = int(degrees)
    minutes = (degrees - whole) * 60
    seconds = (minutes - int(minutes)) * 60
    return Rational(whole, 1), Rational(int(minutes), 1), Rational(round(seconds * 10000), 10000)


def make_exif(
    *,
    taken: str | None = "2026:03:02 09:15:30",
    offset: str | None = None,
    modified: str | None = None,
    gps: tuple[float, float] | None = (LAT, LON),
    refs: tuple[str, str] = ("N", "E"),
    orientation: int | None = None,
    make: str | None = "HUAWEI",
    model: str | None = "ALN-AL00",
) -> Image.Exif:
    exif = Image.Exif()
    if make is not None:
        exif[Base.Make] = make
    if model is not None:
        exif[Base.Model] = model
    if modified is not None:
        exif[Base.DateTime] = modified
    if orientation is not None:
        exif[Base.Orientation] = orientation
    details = exif.get_ifd(IFD.Exif)
    if taken is not None:
        details[Base.DateTimeOriginal] = taken
    if offset is not None:
        details[Base.OffsetTimeOriginal] = offset
    if gps is not None:
        place = exif.get_ifd(IFD.GPSInfo)
        place[GPS.GPSLatitudeRef], place[GPS.GPSLongitudeRef] = refs
        place[GPS.GPSLatitude], place[GPS.GPSLongitude] = dms(gps[0]), dms(gps[1])
    return exif


def halves(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    """Left half red, right half blue: shows which way an image was turned."""
    image = Image.new(mode, size, BLUE)
    image.paste(RED, (0, 0, size[0] // 2, size[1]))
    return image


def encode(image: Image.Image, fmt: str = "JPEG", **options) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def jpeg(size=(64, 48), exif: Image.Exif | None = None, **options) -> bytes:
    if exif is not None:
        options["exif"] = exif
    return encode(halves(size), "JPEG", **options)


def close(a, b, tolerance=40):
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=True))


HEIC_HEAD = (24).to_bytes(4, "big") + b"ftypheic\x00\x00\x00\x00mif1heic" + bytes(64)
UNREADABLE = {
    "text": "不是照片".encode(),
    "empty": b"",
    "pdf": b"%PDF-1.7\n" + bytes(64),
    "heic without a plugin": HEIC_HEAD,
    "jpeg signature only": b"\xff\xd8\xff\xe0" + bytes(64),
    "tiff (decodable, but not a type we take)": encode(halves((16, 16)), "TIFF"),
    "gif (decodable, but not a type we take)": encode(halves((16, 16)), "GIF"),
}


# -------------------------------------------------------------------------------- metadata


def test_metadata_of_a_phone_photo():
    meta = photo_metadata(jpeg((64, 48), make_exif(offset="+08:00")))
    assert set(meta) == set(METADATA_KEYS)
    assert meta["taken_at"] == "2026-03-02T09:15:30+08:00"
    assert meta["gps"] == {"lon": pytest.approx(LON, abs=1e-6), "lat": pytest.approx(LAT, abs=1e-6)}
    assert isinstance(meta["gps"]["lon"], float)
    assert isinstance(meta["gps"]["lat"], float)
    assert meta["make"] == "HUAWEI"
    assert meta["model"] == "ALN-AL00"
    assert (meta["width"], meta["height"]) == (64, 48)


def test_capture_time_without_an_offset_is_local_time_without_a_zone():
    meta = photo_metadata(jpeg(exif=make_exif(modified="2026:03:05 18:00:00")))
    assert meta["taken_at"] == "2026-03-02T09:15:30"


def test_capture_time_falls_back_to_datetime():
    meta = photo_metadata(jpeg(exif=make_exif(taken=None, modified="2026:03:05 18:00:00")))
    assert meta["taken_at"] == "2026-03-05T18:00:00"


@pytest.mark.parametrize("placeholder", ["0000:00:00 00:00:00", "    :  :     :  :  ", "unknown"])
def test_placeholder_capture_times_count_as_none(placeholder):
    assert photo_metadata(jpeg(exif=make_exif(taken=placeholder)))["taken_at"] is None
    meta = photo_metadata(jpeg(exif=make_exif(taken=placeholder, modified="2026:03:05 18:00:00")))
    assert meta["taken_at"] == "2026-03-05T18:00:00"


def test_a_malformed_offset_is_ignored():
    meta = photo_metadata(jpeg(exif=make_exif(offset="CST")))
    assert meta["taken_at"] == "2026-03-02T09:15:30"


@pytest.mark.parametrize(
    ("refs", "signs"), [(("N", "E"), (1, 1)), (("S", "W"), (-1, -1)), (("S", "E"), (-1, 1))]
)
def test_gps_hemispheres(refs, signs):
    meta = photo_metadata(jpeg(exif=make_exif(refs=refs)))
    assert meta["gps"]["lat"] == pytest.approx(signs[0] * LAT, abs=1e-6)
    assert meta["gps"]["lon"] == pytest.approx(signs[1] * LON, abs=1e-6)


def test_gps_of_a_whole_number_of_degrees():
    meta = photo_metadata(jpeg(exif=make_exif(gps=(30.0, 104.0))))
    assert meta["gps"] == {"lon": 104.0, "lat": 30.0}


def test_gps_without_a_fix_counts_as_none():
    assert photo_metadata(jpeg(exif=make_exif(gps=(0.0, 0.0))))["gps"] is None


def test_gps_without_hemisphere_references_counts_as_none():
    exif = make_exif(refs=("X", "E"))
    assert photo_metadata(jpeg(exif=exif))["gps"] is None
    exif = make_exif()
    del exif.get_ifd(IFD.GPSInfo)[GPS.GPSLongitudeRef]
    assert photo_metadata(jpeg(exif=exif))["gps"] is None


def test_gps_with_impossible_values_counts_as_none():
    exif = make_exif()
    exif.get_ifd(IFD.GPSInfo)[GPS.GPSLatitude] = (Rational(91, 1), Rational(0, 1), Rational(0, 1))
    assert photo_metadata(jpeg(exif=exif))["gps"] is None
    exif = make_exif()
    exif.get_ifd(IFD.GPSInfo)[GPS.GPSLongitude] = (Rational(104, 0), Rational(0), Rational(0))
    assert photo_metadata(jpeg(exif=exif))["gps"] is None


def test_width_and_height_as_displayed():
    meta = photo_metadata(jpeg((64, 48), make_exif(orientation=6)))
    assert (meta["width"], meta["height"]) == (48, 64)
    meta = photo_metadata(jpeg((64, 48), make_exif(orientation=3)))
    assert (meta["width"], meta["height"]) == (64, 48)


def test_metadata_of_a_photo_without_exif():
    meta = photo_metadata(jpeg((30, 20)))
    assert meta == {
        "taken_at": None,
        "gps": None,
        "make": None,
        "model": None,
        "width": 30,
        "height": 20,
    }


def test_metadata_of_png_and_webp():
    assert photo_metadata(encode(halves((40, 30)), "PNG"))["width"] == 40
    webp = encode(halves((40, 30)), "WEBP", exif=make_exif())
    meta = photo_metadata(webp)
    assert (meta["width"], meta["height"]) == (40, 30)
    assert meta["taken_at"] == "2026-03-02T09:15:30"
    assert meta["gps"]["lat"] == pytest.approx(LAT, abs=1e-6)


@pytest.mark.parametrize("data", UNREADABLE.values(), ids=UNREADABLE.keys())
def test_metadata_of_unreadable_bytes_is_all_none(data):
    assert photo_metadata(data) == dict.fromkeys(METADATA_KEYS)


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns about the damaged EXIF
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_damaged_photos_never_raise(data):
    original = bytearray(jpeg((32, 32), make_exif(offset="+08:00")))
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, min(len(original), 600) - 1))  # mostly in the EXIF
        original[at] = data.draw(st.integers(0, 255))
    damaged = bytes(original[: data.draw(st.integers(0, len(original)))])
    meta = photo_metadata(damaged)
    assert set(meta) == set(METADATA_KEYS)
    small = thumbnail(damaged, 16)
    assert small is None or small.startswith(b"\xff\xd8\xff")


# ------------------------------------------------------------------------------- thumbnail


def open_thumbnail(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG"
    return image


def test_thumbnail_fits_in_512_pixels_keeping_the_aspect_ratio():
    small = open_thumbnail(thumbnail(jpeg((1600, 1200), make_exif())))
    assert small.size == (512, 384)


def test_thumbnail_carries_no_exif_and_no_gps():
    original = jpeg(
        (1200, 900),
        make_exif(offset="+08:00"),
        xmp=b"<x:xmpmeta><exif:GPSLatitude>30,34.47N</exif:GPSLatitude></x:xmpmeta>",
        comment=b"taken by grid worker Zhang",
    )
    assert photo_metadata(original)["gps"] is not None
    data = thumbnail(original)
    small = open_thumbnail(data)
    assert not small.getexif()
    assert {"exif", "xmp", "comment"}.isdisjoint(small.info)
    assert b"Exif" not in data
    for secret in (b"GPS", b"HUAWEI", b"ALN-AL00", b"2026:03:02", b"Zhang"):
        assert secret not in data
    assert photo_metadata(data) == {
        "taken_at": None,
        "gps": None,
        "make": None,
        "model": None,
        "width": 512,
        "height": 384,
    }


@pytest.mark.parametrize(
    ("orientation", "top", "bottom"),
    [(6, RED, BLUE), (8, BLUE, RED)],  # 6: turn 90° clockwise to display; 8: anticlockwise
)
def test_thumbnail_applies_the_exif_orientation(orientation, top, bottom):
    small = open_thumbnail(thumbnail(jpeg((800, 400), make_exif(orientation=orientation))))
    assert small.size == (256, 512)
    assert close(small.getpixel((128, 64)), top)
    assert close(small.getpixel((128, 448)), bottom)
    assert not small.getexif()  # the orientation is applied, not copied


def test_thumbnail_without_orientation_keeps_the_image_as_it_is():
    small = open_thumbnail(thumbnail(jpeg((800, 400), make_exif())))
    assert small.size == (512, 256)
    assert close(small.getpixel((64, 128)), RED)
    assert close(small.getpixel((448, 128)), BLUE)


def test_thumbnail_never_enlarges():
    assert open_thumbnail(thumbnail(jpeg((100, 50)))).size == (100, 50)


def test_thumbnail_of_another_size():
    assert open_thumbnail(thumbnail(jpeg((300, 200)), max_side=64)).size == (64, 43)


@pytest.mark.parametrize("max_side", [0, -5, True, 1.5, "512"])
def test_thumbnail_size_must_be_positive(max_side):
    with pytest.raises(InvalidInput) as raised:
        thumbnail(jpeg(), max_side)
    assert raised.value.field == "max_side"


def test_thumbnail_of_png_with_transparency_is_on_white():
    image = Image.new("RGBA", (600, 300), (0, 0, 0, 0))
    image.paste((*RED, 255), (0, 0, 300, 300))
    small = open_thumbnail(thumbnail(encode(image, "PNG")))
    assert small.mode == "RGB"
    assert small.size == (512, 256)
    assert close(small.getpixel((64, 128)), RED)
    assert close(small.getpixel((448, 128)), (255, 255, 255))


def test_thumbnail_of_webp_and_of_grey_and_cmyk_jpeg():
    assert open_thumbnail(thumbnail(encode(halves((700, 350)), "WEBP"))).size == (512, 256)
    grey = open_thumbnail(thumbnail(encode(halves((700, 350)).convert("L"), "JPEG")))
    assert (grey.mode, grey.size) == ("L", (512, 256))
    cmyk = open_thumbnail(thumbnail(encode(halves((700, 350)).convert("CMYK"), "JPEG")))
    assert (cmyk.mode, cmyk.size) == ("RGB", (512, 256))


@pytest.mark.parametrize("data", UNREADABLE.values(), ids=UNREADABLE.keys())
def test_thumbnail_of_unreadable_bytes_is_none(data):
    assert thumbnail(data) is None


def test_thumbnail_of_a_truncated_photo_is_none():
    noisy = Image.effect_noise((400, 300), 64).convert("RGB")
    data = encode(noisy, "JPEG", quality=95)
    assert thumbnail(data) is not None
    assert thumbnail(data[: len(data) // 2]) is None
