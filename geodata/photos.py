"""Photos of facilities: uploaded images re-encoded as JPEG without any metadata.

A phone photo carries EXIF: where it was taken (GPS), when, the phone's make and serial. None of
it may reach the public, so every upload is decoded and drawn again (:func:`photo_from_bytes`):
the stored JPEG and its thumbnail hold pixels only. The image is first turned upright as its
EXIF orientation says (the orientation tag goes with the rest), then scaled down to
:data:`MAX_SIDE_PX` (and :data:`THUMB_SIDE_PX` for the thumbnail).
"""

from __future__ import annotations

import io
import math
import warnings
from typing import TYPE_CHECKING

from geodata.errors import InvalidPhoto
from geodata.store import StoredPhoto

if TYPE_CHECKING:
    from PIL import Image

#: Media types accepted for upload, with the Pillow format each must decode as.
PHOTO_TYPES: dict[str, str] = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}
#: Longest side of a stored photo and of its thumbnail, pixels.
MAX_SIDE_PX = 1600
THUMB_SIDE_PX = 320
#: Most pixels an upload may decode to (a small file can claim a huge canvas).
MAX_PIXELS = 50_000_000
JPEG_QUALITY = 85


def photo_from_bytes(data: bytes, media_type: str) -> StoredPhoto:
    """Decode an uploaded photo and re-encode it (and a thumbnail) as metadata-free JPEG.

    Parameters
    ----------
    data
        The uploaded file.
    media_type
        Its declared type, one of :data:`PHOTO_TYPES`; the content must be of that type.

    Returns
    -------
    StoredPhoto
        JPEG image (longest side at most :data:`MAX_SIDE_PX`), thumbnail (at most
        :data:`THUMB_SIDE_PX`) and the stored image's width and height.

    Raises
    ------
    InvalidPhoto
        For another type, content that is not an image of the declared type, or more than
        :data:`MAX_PIXELS` pixels.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError  # Pillow: when a photo is sent

    expected = PHOTO_TYPES.get(media_type)
    if expected is None:
        raise InvalidPhoto(
            f"a photo must be {', '.join(PHOTO_TYPES)}, not {media_type!r}", field="Content-Type"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[expected]) as opened:
                if opened.width * opened.height > MAX_PIXELS:
                    raise InvalidPhoto(
                        f"the photo has {opened.width} x {opened.height} pixels; at most "
                        f"{MAX_PIXELS:,} are accepted",
                        field="body",
                    )
                scale = MAX_SIDE_PX / max(opened.size)
                if opened.format == "JPEG" and scale < 1:
                    # decode at the smallest DCT scale still at least the stored size: 4x faster
                    opened.draft(
                        "RGB", (math.ceil(opened.width * scale), math.ceil(opened.height * scale))
                    )
                upright = ImageOps.exif_transpose(opened)
                upright.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, InvalidPhoto):
            raise
        raise InvalidPhoto(f"not a readable {media_type} image", field="body") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InvalidPhoto(f"the photo has too many pixels: {exc}", field="body") from exc
    rgb = _flattened(upright)
    rgb.thumbnail((MAX_SIDE_PX, MAX_SIDE_PX), Image.Resampling.LANCZOS)
    thumb = rgb.copy()
    thumb.thumbnail((THUMB_SIDE_PX, THUMB_SIDE_PX), Image.Resampling.LANCZOS)
    return StoredPhoto(_jpeg(rgb), _jpeg(thumb), rgb.width, rgb.height)


def _flattened(image: Image.Image) -> Image.Image:
    """A new RGB image of the pixels (transparency on white): no info, EXIF or ICC carried."""
    from PIL import Image

    rgba = image.convert("RGBA")
    out = Image.new("RGB", rgba.size, (255, 255, 255))
    out.paste(rgba, mask=rgba.getchannel("A"))
    return out


def _jpeg(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return buf.getvalue()
