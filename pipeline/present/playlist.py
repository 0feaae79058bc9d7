"""Playlists: M3U with VLC start/stop options per entry, and XSPF.

VLC honours `#EXTVLCOPT:start-time=` / `stop-time=` (seconds) on the entry
that follows, and the same options as `<vlc:option>` in XSPF, so each entry
plays just its clip. Other players play the whole file from the start.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from ..records import Clip
from ..timecode import Timecode

VLC_EXTENSION = "http://www.videolan.org/vlc/playlist/0"
XSPF_NS = "http://xspf.org/ns/0/"


def _title(rank: int, clip: Clip) -> str:
    return f"#{rank} {clip.episode} {Timecode(clip.start).to_hms()}-{Timecode(clip.end).to_hms()} ({clip.score:.3f})"


def write_m3u(clips: list[Clip], path: str) -> None:
    """Extended M3U (UTF-8): `#EXTINF:seconds,title`, the VLC options, then the file's absolute path."""
    lines = ["#EXTM3U"]
    for rank, clip in enumerate(clips, 1):
        lines += [
            f"#EXTINF:{round(clip.end - clip.start)},{_title(rank, clip)}",
            f"#EXTVLCOPT:start-time={clip.start:.3f}",
            f"#EXTVLCOPT:stop-time={clip.end:.3f}",
            clip.path,
        ]
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


def write_xspf(clips: list[Clip], path: str, title: str = "") -> None:
    """XSPF 1: one track per clip with a `file:` location, its duration in ms, and VLC start/stop options."""
    ET.register_namespace("", XSPF_NS)
    ET.register_namespace("vlc", VLC_EXTENSION)
    root = ET.Element(f"{{{XSPF_NS}}}playlist", version="1")
    if title:
        ET.SubElement(root, f"{{{XSPF_NS}}}title").text = title
    tracks = ET.SubElement(root, f"{{{XSPF_NS}}}trackList")
    for rank, clip in enumerate(clips, 1):
        track = ET.SubElement(tracks, f"{{{XSPF_NS}}}track")
        ET.SubElement(track, f"{{{XSPF_NS}}}location").text = Path(clip.path).as_uri()
        ET.SubElement(track, f"{{{XSPF_NS}}}title").text = _title(rank, clip)
        ET.SubElement(track, f"{{{XSPF_NS}}}duration").text = str(round((clip.end - clip.start) * 1000))
        extension = ET.SubElement(track, f"{{{XSPF_NS}}}extension", application=VLC_EXTENSION)
        ET.SubElement(extension, f"{{{VLC_EXTENSION}}}option").text = f"start-time={clip.start:.3f}"
        ET.SubElement(extension, f"{{{VLC_EXTENSION}}}option").text = f"stop-time={clip.end:.3f}"
    tree = ET.ElementTree(root)
    ET.indent(tree)
    tree.write(path, encoding="UTF-8", xml_declaration=True)
