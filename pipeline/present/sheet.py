"""HTML contact sheet: one card per clip with its thumbnail, timecodes, score,
and a link that opens the video at the clip (`file:…#t=start,end`, a W3C
media fragment that browsers' built-in players honour).

Names are shown through `names.visible` (control characters are illegal in
HTML text and would show as garbage or not at all); links are `file://`
URIs, percent-encoded byte for byte."""

from __future__ import annotations

from html import escape
from urllib.parse import quote

from .fields import end_ms, start_ms
from .names import file_uri, visible

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; background: #fafafa; color: #222; }
h1 { font-size: 1.3em; } .grid { display: flex; flex-wrap: wrap; gap: 1em; }
.clip { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: .5em; width: 320px; }
.clip img { width: 100%; display: block; background: #333; min-height: 40px; }
.meta { margin-top: .4em; } .tc { font-family: ui-monospace, monospace; } .missing { color: #a00; }
"""


def media_link(path: str, start: float, end: float) -> str:
    """`file:///…/video.mp4#t=12.000,18.000`: the video, played from start to end where supported."""
    return f"{file_uri(path)}#t={start_ms(start)},{end_ms(end)}"


def sheet_html(records: list[dict], title: str = "scenegrep results") -> str:
    """The sheet for clip records (see `fields.clip_record`); their thumbnails are paths
    relative to the sheet (`export.beside`), linked as such so the folder can be moved as a whole."""
    cards = []
    for record in records:
        if record.get("thumbnail"):
            src = quote(record["thumbnail"])
            picture = f'<img src="{escape(src)}" alt="{escape(visible(record["episode"]))} at {escape(record["start_tc"])}">'
        else:
            picture = '<p class="missing">no thumbnail (video not readable)</p>'
        smpte = (f'<br><span class="tc">{escape(record["start_smpte"])} – {escape(record["end_smpte"])}</span> '
                 f'@ {escape(record["fps"])} fps') if record.get("start_smpte") else ""
        duplicates = len(record.get("duplicates", ()))
        also = f"<br>+{duplicates} near-identical clip(s) folded in" if duplicates else ""
        cards.append(
            f'<div class="clip" id="clip-{record["rank"]}">'
            f'<a href="{escape(media_link(record["path"], record["start"], record["end"]))}">{picture}</a>'
            f'<div class="meta"><b>#{record["rank"]}</b> {escape(visible(record["episode"]))} · score {record["score"]:.3f}'
            f'<br><span class="tc">{escape(record["start_tc"])} – {escape(record["end_tc"])}</span>{smpte}{also}'
            f'<br><a href="{escape(media_link(record["path"], record["start"], record["end"]))}">open at '
            f'{escape(record["start_tc"])}</a></div></div>'
        )
    page = (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{escape(visible(title))}</title><style>{STYLE}</style></head>\n<body>"
        f"<h1>{escape(visible(title))}</h1><p>{len(records)} clip(s). Click a picture to play the clip.</p>"
        f'<div class="grid">\n' + "\n".join(cards) + "\n</div></body></html>\n"
    )
    return page
