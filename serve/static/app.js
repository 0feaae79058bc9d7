// scenegrep serve: the page. Every name from the index is inserted with
// textContent (never as HTML), so a file called <script>… stays text.
"use strict";

const FORMATS = ["csv", "json", "edl", "m3u", "xspf", "html"];
const POLL_MS = 5000; // how often the status refreshes while an index run writes
const $ = (id) => document.getElementById(id);
// shown: the form of the search whose clips are on the page (what the export buttons export)
const state = { clips: [], current: -1, picture: null, canOpen: false, clipEnd: null, clipStart: 0, shown: null, poll: null };

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function show(node, text) {
  node.textContent = text || "";
  node.hidden = !text;
}

async function errorOf(response) {
  try { return (await response.json()).error || response.statusText; } catch (e) { return response.statusText; }
}

function terms(text) {
  return text.split(";").map((t) => t.trim()).filter(Boolean);
}

function formData() {
  const form = new FormData();
  for (const term of terms($("q").value)) form.append("text", term);
  for (const term of terms($("not").value)) form.append("not", term);
  if (state.picture) form.append("image", state.picture, state.picture.name || "pasted.png");
  for (const glob of $("episode").value.split(",").map((g) => g.trim()).filter(Boolean)) form.append("episode", glob);
  for (const [id, name] of [["from", "from"], ["to", "to"], ["per-episode", "per_episode"], ["within", "within"], ["k", "k"]]) {
    const value = $(id).value.trim();
    if (value) form.append(name, value);
  }
  return form;
}

// fetch, or null after saying on the page that the server did not answer (stopped, unreachable)
async function ask(url, options) {
  try {
    return await fetch(url, options);
  } catch (e) {
    show($("message"), "the scenegrep server did not answer; is `scenegrep serve` still running?");
    return null;
  }
}

async function search(event) {
  if (event) event.preventDefault();
  show($("message"), "");
  const form = formData();
  const response = await ask("/api/search", { method: "POST", body: form });
  if (!response) return;
  if (!response.ok) { show($("message"), await errorOf(response)); return; }
  const answer = await response.json();
  state.clips = answer.clips;
  state.shown = form;
  render(answer);
  status(); // an index run started since the page opened shows up with the results
}

function render(answer) {
  const results = $("results");
  results.replaceChildren();
  if (!answer.clips.length) show($("message"), "no matching clips");
  answer.clips.forEach((clip, index) => {
    const card = el("div", "card");
    card.tabIndex = 0;
    card.dataset.rank = clip.rank;
    const img = el("img");
    img.loading = "lazy";
    img.alt = `${clip.episode} at ${clip.start_tc}`;
    img.src = clip.thumbnail_url;
    const title = el("div", "episode", `#${clip.rank} ${clip.episode}`);
    const times = el("div", "tc", `${clip.start_tc} – ${clip.end_tc}`);
    const score = el("span", "score", `score ${clip.score.toFixed(3)}`);
    const line = el("div", "");
    line.append(score);
    if (clip.duplicates.length) line.append(el("span", "same", ` · +${clip.duplicates.length} same shot`));
    card.append(img, title, times, line);
    card.addEventListener("click", () => play(index));
    results.append(card);
  });
  $("viewer").hidden = !answer.clips.length;
  state.current = -1;
  if (answer.clips.length) select(0);
}

function select(index) {
  const cards = $("results").children;
  if (!cards.length) return;
  index = Math.max(0, Math.min(cards.length - 1, index));
  if (state.current >= 0 && cards[state.current]) cards[state.current].classList.remove("selected");
  state.current = index;
  cards[index].classList.add("selected");
  cards[index].focus({ preventScroll: false });
}

function play(index) {
  select(index);
  const clip = state.clips[index];
  const video = $("video");
  show($("player-message"), "");
  $("now").textContent = `#${clip.rank} ${clip.episode}  ${clip.start_tc} – ${clip.end_tc}`;
  state.clipStart = clip.start;
  state.clipEnd = clip.end;
  const start = () => { video.currentTime = clip.start; video.play().catch(() => {}); };
  if (video.dataset.videoId === clip.video_id && video.readyState >= 1) {
    start();
  } else {
    video.dataset.videoId = clip.video_id;
    video.addEventListener("loadedmetadata", start, { once: true });
    video.src = clip.video_url;
  }
}

function clipBounds() {
  const video = $("video");
  if (state.clipEnd === null || video.paused) return;
  if (video.currentTime >= state.clipEnd) {
    if ($("loop").checked) video.currentTime = state.clipStart;
    else { video.pause(); state.clipEnd = null; }
  }
}

function cannotPlay() {
  const video = $("video");
  const clip = state.clips[state.current];
  if (!clip || !video.error) return;
  const what = video.error.code === 4 ? "this browser cannot play this video's format" : "the video could not be played";
  const next = state.canOpen ? "use Open in desktop player" : `run \`scenegrep open ${clip.rank}\` after the same search`;
  show($("player-message"), `${clip.episode}: ${what}; ${next}.`);
}

async function openDesktop() {
  const clip = state.clips[state.current];
  if (!clip) return;
  const response = await fetch("/api/open", {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ video_id: clip.video_id, start: clip.start, end: clip.end }),
  });
  show($("player-message"), response.ok ? "" : await errorOf(response));
}

async function download(format) {
  show($("message"), "");
  // the clips on the page, even when the boxes have been edited since without searching
  const response = await ask(`/api/export?format=${format}`, { method: "POST", body: state.shown || formData() });
  if (!response) return;
  if (!response.ok) { show($("message"), await errorOf(response)); return; }
  const disposition = response.headers.get("content-disposition") || "";
  const match = /filename="([^"]+)"/.exec(disposition);
  const link = el("a");
  link.href = URL.createObjectURL(await response.blob());
  link.download = match ? match[1] : `scenegrep-results.${format}`;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

function setPicture(file) {
  if (file && !file.type.startsWith("image/")) { show($("message"), `${file.name} is not a picture`); return; }
  state.picture = file || null;
  const preview = $("drop-preview");
  if (preview.src) URL.revokeObjectURL(preview.src);
  preview.hidden = !file;
  $("drop-clear").hidden = !file;
  if (file) preview.src = URL.createObjectURL(file); else preview.removeAttribute("src");
  $("drop-label").hidden = !!file;
}

async function status() {
  clearTimeout(state.poll); // one chain of refreshes, however often a search asks for one
  const response = await ask("/api/info");
  if (!response) return;
  if (!response.ok) { show($("status"), await errorOf(response)); return; }
  const info = await response.json();
  state.canOpen = info.can_open;
  $("open-desktop").hidden = !info.can_open;
  let text = `${info.model} · every ${info.every} s · ${info.videos} videos · ${info.frames} frames`;
  if (info.indexing) text += ` · indexing now (${info.unregistered_frames} frames of the video in progress)`;
  $("status").textContent = text;
  $("status").classList.toggle("busy", info.indexing);
  if (info.indexing) state.poll = setTimeout(status, POLL_MS);
}

function keys(event) {
  const target = event.target;
  if (target.matches("input, textarea, select, button, summary")) return;
  const video = $("video");
  if (["ArrowRight", "ArrowDown", "j"].includes(event.key)) select(state.current + 1);
  else if (["ArrowLeft", "ArrowUp", "k"].includes(event.key)) select(state.current - 1);
  else if (event.key === "Enter" && state.current >= 0) play(state.current);
  else if (event.key === " " && video.src) { if (video.paused) video.play(); else video.pause(); }
  else return;
  event.preventDefault();
}

function wire() {
  $("search").addEventListener("submit", search);
  $("video").addEventListener("timeupdate", clipBounds);
  $("video").addEventListener("seeking", () => {
    const video = $("video");
    if (state.clipEnd !== null && (video.currentTime > state.clipEnd || video.currentTime < state.clipStart - 0.5)) state.clipEnd = null;
  });
  $("video").addEventListener("error", cannotPlay);
  $("open-desktop").addEventListener("click", openDesktop);
  for (const format of FORMATS) {
    const button = el("button", "", format.toUpperCase());
    button.type = "button";
    button.dataset.format = format;
    button.addEventListener("click", () => download(format));
    $("exports").append(button);
  }
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); setPicture(e.dataTransfer.files[0]); });
  $("image").addEventListener("change", (e) => setPicture(e.target.files[0]));
  $("drop-clear").addEventListener("click", () => { $("image").value = ""; setPicture(null); });
  document.addEventListener("paste", (e) => {
    const file = [...(e.clipboardData ? e.clipboardData.files : [])].find((f) => f.type.startsWith("image/"));
    if (file) { e.preventDefault(); setPicture(file); }
  });
  document.addEventListener("keydown", keys);
  status();
}

wire();
