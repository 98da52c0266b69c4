"""Image dimensions read from a file's header, before anything is decoded.

A 30000 x 30000 PNG of one colour compresses to under a megabyte; decoding it takes 2.7 GB and
OpenCV's geometric functions then overflow (``cv2.warpAffine`` crashes the process). So
``read_image`` asks the header first and refuses anything above ``max_image_pixels()``
(default ``DEFAULT_MAX_IMAGE_PIXELS``, 64 megapixels: an 8K frame is 33; COCO and CrowdPose
images are under 1) or with a side above ``MAX_IMAGE_SIDE`` (16384). The limit is set by the
environment variable ``LITEPOSE_MAX_IMAGE_PIXELS``.

``header_size(data)`` knows JPEG, PNG, GIF, BMP, WebP, TIFF, the PNM family (PBM, PGM, PPM,
PAM, PFM), Sun raster and Radiance HDR: every format OpenCV reads except JPEG 2000, OpenEXR
and AVIF, whose decoded size is checked after decoding instead (OpenCV's own pixel limit is
set to ours for them).
"""

import os
import re
import struct

DEFAULT_MAX_IMAGE_PIXELS = 2**26
MAX_IMAGE_SIDE = 16384
ENV_MAX_PIXELS = "LITEPOSE_MAX_IMAGE_PIXELS"


def max_image_pixels():
    """The pixel limit: ``LITEPOSE_MAX_IMAGE_PIXELS`` when set to a positive integer, else the default."""
    value = os.environ.get(ENV_MAX_PIXELS, "").strip()
    if value.isdigit() and int(value) > 0:
        return int(value)
    return DEFAULT_MAX_IMAGE_PIXELS


# JPEG start-of-frame markers (baseline, progressive, lossless, arithmetic; not DHT, JPG, DAC).
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_JPEG_STANDALONE = {0x01, 0xD8} | set(range(0xD0, 0xD8))


def _jpeg(data):
    position = 2
    length = len(data)
    while position + 4 <= length:
        if data[position] != 0xFF:
            return None  # not at a marker: damaged
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        position += 2
        if marker in _JPEG_STANDALONE:
            continue
        if marker in (0xD9, 0xDA):  # end of image, start of scan: no frame header before it
            return None
        (segment,) = struct.unpack(">H", data[position:position + 2])
        if marker in _JPEG_SOF:
            if position + 7 > length:
                return None
            height, width = struct.unpack(">HH", data[position + 3:position + 7])
            return width, height
        if segment < 2:
            return None
        position += segment
    return None


def _png(data):
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", data[16:24])


def _gif(data):
    # Header, screen descriptor, one image descriptor and the trailer: anything shorter is no GIF.
    return struct.unpack("<HH", data[6:10]) if len(data) >= 6 + 7 + 10 + 1 else None


def _bmp(data):
    if len(data) < 26:
        return None
    (header,) = struct.unpack("<I", data[14:18])
    if header == 12:
        return struct.unpack("<HH", data[18:22])
    width, height = struct.unpack("<ii", data[18:26])
    return abs(width), abs(height)


def _webp(data):
    chunk = data[12:16]
    if chunk == b"VP8 " and len(data) >= 30:
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25:
        (bits,) = struct.unpack("<I", data[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X" and len(data) >= 30:
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    return None


def _tiff(data):
    order = "<" if data[:2] == b"II" else ">"
    if len(data) < 8:
        return None
    (version,) = struct.unpack(order + "H", data[2:4])
    if version == 43:  # BigTIFF: 8-byte offsets
        if len(data) < 16:
            return None
        (offset,) = struct.unpack(order + "Q", data[8:16])
        if offset + 8 > len(data):
            return None
        (count,) = struct.unpack(order + "Q", data[offset:offset + 8])
        entry_size, start, value_at = 20, offset + 8, 12
    else:
        (offset,) = struct.unpack(order + "I", data[4:8])
        if offset + 2 > len(data):
            return None
        (count,) = struct.unpack(order + "H", data[offset:offset + 2])
        entry_size, start, value_at = 12, offset + 2, 8
    found = {}
    for index in range(min(count, 4096)):
        entry = data[start + index * entry_size:start + (index + 1) * entry_size]
        if len(entry) < entry_size:
            break
        tag, kind = struct.unpack(order + "HH", entry[:4])
        if tag in (256, 257):
            if kind == 3:
                (value,) = struct.unpack(order + "H", entry[value_at:value_at + 2])
            elif kind == 4:
                (value,) = struct.unpack(order + "I", entry[value_at:value_at + 4])
            elif kind == 16:
                (value,) = struct.unpack(order + "Q", entry[value_at:value_at + 8])
            else:
                return None
            found[tag] = value
    if 256 in found and 257 in found:
        return found[256], found[257]
    return None


_PNM_TOKEN = re.compile(rb"(?:\s|#[^\n]*\n?)*([^\s#]+)")


def _pnm(data):
    if data[:2] == b"P7":  # PAM: WIDTH and HEIGHT lines
        header = data[:4096]
        width = re.search(rb"\nWIDTH\s+(\d+)", header)
        height = re.search(rb"\nHEIGHT\s+(\d+)", header)
        return (int(width.group(1)), int(height.group(1))) if width and height else None
    position, values = 2, []
    while len(values) < 2:
        match = _PNM_TOKEN.match(data, position, min(len(data), position + 4096))
        if not match or not match.group(1).isdigit():
            return None
        values.append(int(match.group(1)))
        position = match.end()
    return values[0], values[1]


def _sun_raster(data):
    return struct.unpack(">II", data[4:12]) if len(data) >= 12 else None


def _radiance(data):
    match = re.search(rb"\n\n([-+][YX])\s+(\d+)\s+([-+][YX])\s+(\d+)", data[:8192])
    if not match:
        return None
    first, second = int(match.group(2)), int(match.group(4))
    return (second, first) if match.group(1).endswith(b"Y") else (first, second)


def header_size(data):
    """``(width, height)`` from the header of the image file ``data`` (bytes), ``None`` when the
    format is not one this module knows, or ``"damaged"`` when it is but the header cannot be read."""
    head = data[:16]
    if head.startswith(b"\xff\xd8"):
        parser = _jpeg
    elif head.startswith(b"\x89PNG\r\n\x1a\n"):
        parser = _png
    elif head[:6] in (b"GIF87a", b"GIF89a"):
        parser = _gif
    elif head.startswith(b"BM"):
        parser = _bmp
    elif head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        parser = _webp
    elif head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        parser = _tiff
    elif len(head) >= 3 and head[0:1] == b"P" and head[1:2] in b"1234567Ff" and head[2:3].isspace():
        parser = _pnm
    elif head[:4] == b"\x59\xa6\x6a\x95":
        parser = _sun_raster
    elif head.startswith((b"#?RADIANCE", b"#?RGBE")):
        parser = _radiance
    else:
        return None
    try:
        size = parser(data)
    except (struct.error, ValueError, IndexError, OverflowError):
        size = None
    return size if size is not None else "damaged"


def size_problem(width, height, max_pixels=None):
    """Why an image of ``width`` x ``height`` pixels is refused, or None."""
    max_pixels = max_image_pixels() if max_pixels is None else max_pixels
    if width <= 0 or height <= 0:
        return f"its header gives a size of {width}x{height} pixels"
    if width > MAX_IMAGE_SIDE or height > MAX_IMAGE_SIDE:
        return f"{width}x{height} pixels: a side is longer than {MAX_IMAGE_SIDE}"
    if width * height > max_pixels:
        return (f"{width}x{height} pixels is more than the limit of {max_pixels} "
                f"(environment variable {ENV_MAX_PIXELS})")
    return None
