"""Colour tags: FFmpeg's integer enums <-> the names that ffprobe prints.

Tags travel from probe to writer as names so that ``MediaInfo`` is readable and comparable,
and so that an "unspecified" tag stays unspecified (``None``) instead of being guessed into
the output. Separately, ``conversion_matrix`` picks the YUV<->RGB matrix actually used for
pixels: the tagged one, or FFmpeg's size-based default when the file says nothing. Reader
and writer use the same rule, which is what keeps a decode -> encode round trip colour-exact.
"""

from __future__ import annotations

from av.video.reformatter import ColorRange, Colorspace

PRIMARIES: dict[int, str] = {
    1: "bt709", 4: "bt470m", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m", 8: "film",
    9: "bt2020", 10: "smpte428", 11: "smpte431", 12: "smpte432", 22: "ebu3213",
}
TRANSFER: dict[int, str] = {
    1: "bt709", 4: "gamma22", 5: "gamma28", 6: "smpte170m", 7: "smpte240m", 8: "linear",
    9: "log100", 10: "log316", 11: "iec61966-2-4", 12: "bt1361e", 13: "iec61966-2-1",
    14: "bt2020-10", 15: "bt2020-12", 16: "smpte2084", 17: "smpte428", 18: "arib-std-b67",
}
MATRIX: dict[int, str] = {
    0: "gbr", 1: "bt709", 4: "fcc", 5: "bt470bg", 6: "smpte170m", 7: "smpte240m",
    8: "ycgco", 9: "bt2020nc", 10: "bt2020c", 11: "smpte2085", 12: "chroma-derived-nc",
    13: "chroma-derived-c", 14: "ictcp",
}
RANGE: dict[int, str] = {1: "tv", 2: "pc"}

UNSPECIFIED = 2  # AVCOL_PRI/TRC/SPC_UNSPECIFIED
RANGE_UNSPECIFIED = 0


def name_of(table: dict[int, str], value: int | None) -> str | None:
    """The ffprobe name of an enum value; ``None`` for unspecified or unknown values."""
    return None if value is None else table.get(int(value))


def value_of(table: dict[int, str], name: str | None, unspecified: int = UNSPECIFIED) -> int:
    """The FFmpeg enum value for a name from ``table``; unspecified for ``None``."""
    if name is None:
        return unspecified
    for value, known in table.items():
        if known == name:
            return value
    raise ValueError(f"unknown colour tag {name!r}; known: {sorted(table.values())}")


_SWS_MATRIX = {
    "bt709": Colorspace.ITU709,
    "bt470bg": Colorspace.ITU601,
    "smpte170m": Colorspace.ITU601,
    "fcc": Colorspace.FCC,
    "smpte240m": Colorspace.SMPTE240M,
    "bt2020nc": Colorspace.BT2020,
    "bt2020c": Colorspace.BT2020,
}


def conversion_matrix(matrix: str | None, height: int) -> Colorspace:
    """The YUV<->RGB matrix for pixels: the tag if swscale knows it, else by frame size.

    Untagged video follows the convention of FFmpeg, x264 and players alike: HD (720 lines
    and up) is BT.709, SD is BT.601.
    """
    if matrix in _SWS_MATRIX:
        return _SWS_MATRIX[matrix]
    return Colorspace.ITU709 if height >= 720 else Colorspace.ITU601


def conversion_range(color_range: str | None) -> ColorRange:
    """Full ("pc") range only when tagged so; video is limited range unless it says otherwise."""
    return ColorRange.JPEG if color_range == "pc" else ColorRange.MPEG
