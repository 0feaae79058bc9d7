"""The search form: the CLI's `search` options as request fields, checked into
the pipeline's query, filters and clip rules."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import File, Form, HTTPException, UploadFile
from starlette.concurrency import run_in_threadpool

from scenegrep.pipeline.clips import ClipRules
from scenegrep.pipeline.query import Query
from scenegrep.pipeline.search import Filters
from scenegrep.pipeline.timecode import Timecode

from .uploads import MAX_QUERY_IMAGES, read_picture, upload_key

MAX_CLIPS = 200
"""Most clips one request may ask for: a page of results, not the archive."""

MAX_TERMS = 32
MAX_TERM_CHARS = 1000
"""Most text terms a query may hold, and characters a term: CLIP reads 77 tokens of
each (a few hundred characters), and the server keeps the embeddings of the terms
it saw, so longer text is only work and memory for nothing."""


@dataclass
class SearchForm:
    """A search as the form sends it, already split into terms."""

    text: list[str]
    not_text: list[str]
    image: list[UploadFile]
    not_image: list[UploadFile]
    k: int
    episode: list[str]
    start: str | None
    end: str | None
    min_score: float | None
    within: float | None
    per_episode: int | None
    pad: float
    gap: float | None
    keep_duplicates: bool
    snap: bool = True

    async def plan(self):
        """(query, pictures by term value, filters, rules). Raises HTTPException (4xx)
        for unreadable pictures or times, ScenegrepError for a query the CLI refuses."""
        if len(self.image) + len(self.not_image) > MAX_QUERY_IMAGES:
            raise HTTPException(400, f"a query holds at most {MAX_QUERY_IMAGES} pictures")
        terms = [*self.text, *self.not_text]
        if len(terms) > MAX_TERMS or any(len(term) > MAX_TERM_CHARS for term in terms):
            raise HTTPException(400, f"a query holds at most {MAX_TERMS} text terms of {MAX_TERM_CHARS} characters")
        pictures, keys = {}, {"image": [], "not_image": []}
        for kind, uploads in (("image", self.image), ("not_image", self.not_image)):
            for upload in uploads:
                key = upload_key(len(pictures), upload.filename)
                # Decoding a large picture takes most of a second: off the event loop, which serves everyone
                pictures[key] = await run_in_threadpool(read_picture, await upload.read(), upload.filename)
                keys[kind].append(key)
        query = Query.parse(self.text, keys["image"], self.not_text, keys["not_image"])
        filters = Filters(tuple(e for e in self.episode if e.strip()), _time(self.start, "from"), _time(self.end, "to"))
        filters.check()
        rules = ClipRules(gap=self.gap, pad=self.pad, min_score=self.min_score, within=self.within,
                          per_episode=self.per_episode, snap=self.snap,
                          **({"duplicate_similarity": None} if self.keep_duplicates else {}))
        return query, pictures, filters, rules


def _time(text: str | None, name: str) -> float | None:
    if text is None or not text.strip():
        return None
    try:
        return Timecode.parse(text).seconds
    except ValueError as exc:
        raise HTTPException(400, f"{name}: {exc}") from exc


def search_form(
    text: list[str] = Form(default=[], description="A query term; `2:kitchen` weighs it 2 (repeatable)."),
    not_text: list[str] = Form(default=[], alias="not", description="Push clips matching this text down (repeatable)."),
    image: list[UploadFile] = File(default=[], description="Search with a picture (repeatable)."),
    not_image: list[UploadFile] = File(default=[], description="Push clips looking like this picture down."),
    k: int = Form(10, ge=1, le=MAX_CLIPS, description="Clips to return."),
    episode: list[str] = Form(default=[], description="Only these episodes (shell globs; repeatable)."),
    start: str | None = Form(None, alias="from", description="Only frames at or after this time (90, 1:30)."),
    end: str | None = Form(None, alias="to", description="Only frames at or before this time."),
    min_score: float | None = Form(None, allow_inf_nan=False, description="Drop frames scoring below this."),
    within: float | None = Form(None, ge=0, allow_inf_nan=False, description="Keep frames within this of the best."),
    per_episode: int | None = Form(None, ge=1, description="At most this many clips per episode."),
    pad: float = Form(0.0, ge=0, le=3600, allow_inf_nan=False, description="Seconds added before and after each clip."),
    gap: float | None = Form(None, ge=0, le=3600, allow_inf_nan=False, description="Hits this close join one clip."),
    keep_duplicates: bool = Form(False, description="Do not fold near-identical shots together."),
    snap: bool = Form(True, description="Clip edges on the shot changes around them (false: on the sampling grid), "
                                        "as `search` and `search --no-snap`."),
) -> SearchForm:
    return SearchForm(text, not_text, image, not_image, k, episode, start, end, min_score, within, per_episode, pad,
                      gap, keep_duplicates, snap)
