"""Playlists: M3U with VLC start/stop options per entry, and XSPF.

VLC honours `#EXTVLCOPT:start-time=` / `stop-time=` (seconds) on the entry
that follows, and the same options as `<vlc:option>` in XSPF, so each entry
plays just its clip. Other players play the whole file from the start.

Names are untrusted: titles show them through `names.visible` (a newline in
a file name must not add a line, a control character is illegal in XML),
and a path that cannot stand on an M3U line as it is becomes a `file://`
URI, whose percent-encoding keeps every byte of the name.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from ..records import Clip
from ..timecode import Timecode
from .fields import end_ms, start_ms
from .names import file_uri, is_safe, visible

VLC_EXTENSION = "http://www.videolan.org/vlc/playlist/0"
XSPF_NS = "http://xspf.org/ns/0/"


def _title(rank: int, clip: Clip) -> str:
    return visible(f"#{rank} {clip.episode} {Timecode(clip.start).to_hms()}-{Timecode(clip.end).to_hms()} "
                   f"({clip.score:.3f})")


def m3u_location(path: str) -> str:
    """The entry line for a video: its absolute path, or its `file://` URI when the path
    holds a line break or another character that cannot stand on a line as it is (or a
    percent-encoded reference for a path that is not absolute: `#…` would read as a tag)."""
    return path if is_safe(path) and path.startswith("/") else file_uri(path)


def m3u_text(clips: list[Clip]) -> str:
    """Extended M3U (UTF-8): `#EXTINF:seconds,title`, the VLC options, then the video (see `m3u_location`)."""
    lines = ["#EXTM3U"]
    for rank, clip in enumerate(clips, 1):
        lines += [
            f"#EXTINF:{round(clip.end - clip.start)},{_title(rank, clip)}",
            f"#EXTVLCOPT:start-time={start_ms(clip.start)}",
            f"#EXTVLCOPT:stop-time={end_ms(clip.end)}",
            m3u_location(clip.path),
        ]
    return "\n".join(lines) + "\n"


def xspf_text(clips: list[Clip], title: str = "") -> str:
    """XSPF 1: one track per clip with a `file:` location, its duration in ms, and VLC start/stop options."""
    ET.register_namespace("", XSPF_NS)
    ET.register_namespace("vlc", VLC_EXTENSION)
    root = ET.Element(f"{{{XSPF_NS}}}playlist", version="1")
    if title:
        ET.SubElement(root, f"{{{XSPF_NS}}}title").text = visible(title)
    tracks = ET.SubElement(root, f"{{{XSPF_NS}}}trackList")
    for rank, clip in enumerate(clips, 1):
        track = ET.SubElement(tracks, f"{{{XSPF_NS}}}track")
        ET.SubElement(track, f"{{{XSPF_NS}}}location").text = file_uri(clip.path)
        ET.SubElement(track, f"{{{XSPF_NS}}}title").text = _title(rank, clip)
        ET.SubElement(track, f"{{{XSPF_NS}}}duration").text = str(round((clip.end - clip.start) * 1000))
        extension = ET.SubElement(track, f"{{{XSPF_NS}}}extension", application=VLC_EXTENSION)
        ET.SubElement(extension, f"{{{VLC_EXTENSION}}}option").text = f"start-time={start_ms(clip.start)}"
        ET.SubElement(extension, f"{{{VLC_EXTENSION}}}option").text = f"stop-time={end_ms(clip.end)}"
    tree = ET.ElementTree(root)
    ET.indent(tree)
    return "<?xml version='1.0' encoding='UTF-8'?>\n" + ET.tostring(root, encoding="unicode") + "\n"
