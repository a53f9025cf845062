"""Photos: what the camera recorded (capture time, place, device, size) and a small copy to
show in lists.

Field photos are evidence: the EXIF capture time and GPS position tell a supervisor when and
where a grid worker stood. The same GPS position is personal data, so the thumbnail, which is
served far more widely than the original, is written with no EXIF (nor XMP or comments) at all.

Only the photo formats the service accepts are decoded (JPEG, PNG, WebP, and HEIC when a HEIF
plugin such as pillow-heif is registered); anything Pillow cannot decode gives empty metadata
and no thumbnail rather than an error, because the original is kept either way.
"""

from __future__ import annotations

import io
import math
import re
from datetime import datetime, timedelta, timezone
from typing import Any

# The plugins are imported so that their decoders are registered: Pillow only opens the
# formats named in `_DECODABLE`, and otherwise registers plugins lazily.
from PIL import Image, ImageOps, JpegImagePlugin, PngImagePlugin, WebPImagePlugin  # noqa: F401
from PIL.ExifTags import GPS, IFD, Base

from gridwork_common.errors import InvalidInput

METADATA_KEYS = ("taken_at", "gps", "make", "model", "width", "height")
THUMBNAIL_QUALITY = 85

_DECODABLE = ("JPEG", "PNG", "WEBP", "HEIF")
_MAX_TEXT = 200  # characters kept of a camera make or model
_EXIF_TIME = re.compile(r"(\d{4})[:-](\d{2})[:-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_EXIF_OFFSET = re.compile(r"([+-])(\d{2}):(\d{2})")
_SIDEWAYS = (5, 6, 7, 8)  # EXIF orientations that swap width and height


def photo_metadata(data: bytes) -> dict[str, Any]:
    """What the photo says about itself, each value None when it does not say it:

    - `taken_at`: the capture time from EXIF (DateTimeOriginal, else DateTime) as an ISO 8601
      string. EXIF times are local wall-clock times with no zone, so the string has no offset
      unless the camera also wrote OffsetTimeOriginal (OffsetTime for DateTime).
    - `gps`: {"lon": float, "lat": float} in decimal degrees (WGS 84 as phones record it).
      A position of exactly 0, 0 is what cameras without a fix write, so it counts as none.
    - `make`, `model`: the camera's, as recorded.
    - `width`, `height`: in pixels, as displayed (after the EXIF orientation).
    """
    meta: dict[str, Any] = dict.fromkeys(METADATA_KEYS)
    image = _open(data)
    if image is None:
        return meta
    with image:
        width, height = image.size
        exif = _exif(image)
    if _orientation(exif) in _SIDEWAYS:
        width, height = height, width
    meta.update(
        taken_at=_taken_at(exif),
        gps=_gps(exif),
        make=_text(exif.get(Base.Make)),
        model=_text(exif.get(Base.Model)),
        width=width,
        height=height,
    )
    return meta


def thumbnail(data: bytes, max_side: int = 512) -> bytes | None:
    """A JPEG copy no side of which is longer than `max_side` pixels, turned upright by the EXIF
    orientation and carrying no EXIF, XMP or comment; None when the photo cannot be decoded."""
    if isinstance(max_side, bool) or not isinstance(max_side, int) or max_side < 1:
        raise InvalidInput("max_side", "must be a positive number of pixels")
    image = _open(data)
    if image is None:
        return None
    try:
        with image:
            # JPEG decodes at a reduced scale (1/2 to 1/8), never below the size asked
            # for: a 12-megapixel photo at 1/4, half the CPU of decoding it at 1/2.
            image.draft(None, (max_side, max_side))
            upright = ImageOps.exif_transpose(image)
        upright.thumbnail((max_side, max_side))
        flat = _without_alpha(upright)
        icc_profile = upright.info.get("icc_profile") if flat.mode == upright.mode else None
        flat.info = {}  # nothing of the original's metadata may be carried over
        out = io.BytesIO()
        options: dict[str, Any] = {"quality": THUMBNAIL_QUALITY, "optimize": True}
        if icc_profile:
            options["icc_profile"] = icc_profile  # colours only: no place, time or device
        flat.save(out, "JPEG", **options)
    except Exception:  # Pillow raises many kinds of errors on damaged or hostile files
        return None
    return out.getvalue()


# --------------------------------------------------------------------------------- decoding


def _open(data: bytes) -> Image.Image | None:
    formats = [f for f in _DECODABLE if f in Image.OPEN]
    try:
        return Image.open(io.BytesIO(data), formats=formats)
    except Exception:  # not an image, not one of ours, a decompression bomb, or damaged
        return None


def _exif(image: Image.Image) -> Image.Exif:
    try:
        return image.getexif()
    except Exception:  # damaged EXIF is treated as none
        return Image.Exif()


def _ifd(exif: Image.Exif, ifd: int) -> dict[int, Any]:
    try:
        return dict(exif.get_ifd(ifd))
    except Exception:
        return {}


def _without_alpha(image: Image.Image) -> Image.Image:
    """The image in a mode JPEG can store, transparent parts on white."""
    if image.mode in ("RGB", "L"):
        return image
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, "white")
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


# ------------------------------------------------------------------------------------ EXIF


def _orientation(exif: Image.Exif) -> int | None:
    value = exif.get(Base.Orientation)
    return value if isinstance(value, int) else None


def _taken_at(exif: Image.Exif) -> str | None:
    details = _ifd(exif, IFD.Exif)
    candidates = (
        (details.get(Base.DateTimeOriginal), details.get(Base.OffsetTimeOriginal)),
        (exif.get(Base.DateTime), details.get(Base.OffsetTime)),
    )
    for stamp, offset in candidates:
        moment = _exif_time(_text(stamp), _text(offset))
        if moment is not None:
            return moment.isoformat()
    return None


def _exif_time(stamp: str | None, offset: str | None) -> datetime | None:
    match = _EXIF_TIME.match(stamp or "")
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(part) for part in match.groups())
    try:
        moment = datetime(year, month, day, hour, minute, second)
    except ValueError:  # "0000:00:00 00:00:00" and other placeholders
        return None
    zone = _EXIF_OFFSET.fullmatch(offset or "")
    if zone is None:
        return moment
    sign = -1 if zone[1] == "-" else 1
    try:
        delta = sign * timedelta(hours=int(zone[2]), minutes=int(zone[3]))
        return moment.replace(tzinfo=timezone(delta))
    except ValueError:  # an offset of a day or more
        return moment


def _gps(exif: Image.Exif) -> dict[str, float] | None:
    gps = _ifd(exif, IFD.GPSInfo)
    lat = _coordinate(gps.get(GPS.GPSLatitude), gps.get(GPS.GPSLatitudeRef), "N", "S", 90)
    lon = _coordinate(gps.get(GPS.GPSLongitude), gps.get(GPS.GPSLongitudeRef), "E", "W", 180)
    if lat is None or lon is None or (lat == 0 and lon == 0):
        return None
    return {"lon": lon, "lat": lat}


def _coordinate(value: Any, ref: Any, positive: str, negative: str, bound: float) -> float | None:
    """Degrees from EXIF's (degrees, minutes, seconds) rationals and its hemisphere letter."""
    hemisphere = (_text(ref) or "").upper()
    if hemisphere not in (positive, negative):
        return None
    parts = value if isinstance(value, tuple | list) else (value,)
    try:
        numbers = [float(part) for part in parts]
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if not 1 <= len(numbers) <= 3 or not all(math.isfinite(n) and n >= 0 for n in numbers):
        return None
    degrees = sum(n / 60**i for i, n in enumerate(numbers))
    if degrees > bound:
        return None
    return -degrees if hemisphere == negative else degrees


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if not isinstance(value, str):
        return None
    text = value.strip("\x00 \t\r\n")
    return text[:_MAX_TEXT] or None
