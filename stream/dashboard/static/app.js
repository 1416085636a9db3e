// gaitwatch dashboard page: applies the server's changes to a small picture and draws it once per frame.
// No framework and no build step: the server sends records of a few kinds (track, gone, publisher, timeline,
// feed, gallery), each applied here, and only what changed is drawn again.
"use strict";

// The canonical skeleton's bones (Kinect v1 order, see docs/ARCHITECTURE.md): parent of each joint.
const PARENTS = [-1, 0, 1, 2, 2, 4, 5, 6, 2, 8, 9, 10, 0, 12, 13, 14, 0, 16, 17, 18];
const TIMELINE_SHOWN = 300;

const stats = { messages: 0, changes: 0, snapshots: 0, renders: 0, renderMs: 0, lastRenderMs: 0, tracks: 0 };
window.gaitwatch = stats;

const picture = { tracks: new Map(), publishers: new Map(), feed: {}, page: {}, about: {} };
const dirty = { tracks: new Set(), gone: new Set(), publishers: false, lines: [], feed: false, all: false };
let drawing = false;
let token = null;

const $ = (id) => document.getElementById(id);
const fmt = (v, digits = 3) => (v === null || v === undefined ? "–" : Number(v).toFixed(digits));
const esc = (text) => String(text ?? "");

// --- the write token: from the address's #token=..., kept for this tab only -------------------------
function takeToken() {
  const match = location.hash.match(/token=([^&]+)/);
  if (match) {
    sessionStorage.setItem("gaitwatch-token", decodeURIComponent(match[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
  token = sessionStorage.getItem("gaitwatch-token");
}

// --- the feed -----------------------------------------------------------------------------------------
function connect(delay = 500) {
  const socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
  socket.onopen = () => setConnection(true);
  socket.onmessage = (message) => receive(JSON.parse(message.data));
  socket.onclose = () => {
    setConnection(false);
    setTimeout(() => connect(Math.min(delay * 2, 5000)), delay);
  };
}

function setConnection(up) {
  const badge = $("connection");
  badge.textContent = up ? "live" : "reconnecting…";
  badge.className = `badge ${up ? "on" : "off"}`;
}

function receive(message) {
  stats.messages += 1;
  picture.page = message.page || picture.page;
  if (message.type === "snapshot") {
    stats.snapshots += 1;
    takeSnapshot(message.state);
  } else {
    for (const change of message.changes) apply(change);
  }
  dirty.feed = true;
  schedule();
}

function takeSnapshot(state) {
  picture.tracks = new Map(state.tracks.map((t) => [t.key, t]));
  picture.publishers = new Map(state.publishers.map((p) => [p.id, p]));
  picture.feed = state.feed;
  picture.about = { endpoint: state.endpoint, gallery: state.gallery, det: state.det };
  $("timeline").replaceChildren();
  dirty.lines = state.timeline.slice(-TIMELINE_SHOWN);
  dirty.all = true;
  dirty.publishers = true;
  setupGallery();
  drawDet();
}

function apply(change) {
  stats.changes += 1;
  switch (change.kind) {
    case "track":
      picture.tracks.set(change.key, change.track);
      dirty.tracks.add(change.key);
      break;
    case "gone":
      picture.tracks.delete(change.key);
      dirty.gone.add(change.key);
      break;
    case "publisher":
      picture.publishers.set(change.key, change.publisher);
      dirty.publishers = true;
      break;
    case "timeline":
      dirty.lines.push(change.line);
      if (dirty.lines.length > TIMELINE_SHOWN) dirty.lines.splice(0, dirty.lines.length - TIMELINE_SHOWN);
      break;
    case "feed":
      picture.feed = change.feed;
      break;
    case "gallery":
      galleryChanged(change);
      break;
  }
}

function schedule() {
  if (!drawing) {
    drawing = true;
    requestAnimationFrame(render);
  }
}

// --- drawing, once per animation frame ------------------------------------------------------------------
function render() {
  drawing = false;
  const began = performance.now();
  if (dirty.all) {
    $("sensors").querySelectorAll(".sensor").forEach((node) => node.remove());
    for (const key of picture.tracks.keys()) dirty.tracks.add(key);
    dirty.all = false;
  }
  for (const key of dirty.gone) {
    const card = document.querySelector(`.track[data-key="${CSS.escape(key)}"]`);
    if (card) card.remove();
  }
  for (const key of dirty.tracks) {
    const track = picture.tracks.get(key);
    if (track) drawTrack(track);
  }
  dirty.tracks.clear();
  dirty.gone.clear();
  document.querySelectorAll(".sensor").forEach((section) => {
    if (!section.querySelector(".track")) section.remove();
  });
  $("nobody").hidden = picture.tracks.size > 0;
  if (dirty.lines.length) drawTimeline(dirty.lines.splice(0));
  if (dirty.publishers) drawPublishers();
  if (dirty.feed) drawFeed();
  dirty.publishers = dirty.feed = false;
  stats.tracks = picture.tracks.size;
  stats.renders += 1;
  stats.lastRenderMs = performance.now() - began;
  stats.renderMs += stats.lastRenderMs;
}

function sensorSection(track) {
  const id = `${track.publisher} · ${track.sensor}`;
  let section = document.querySelector(`.sensor[data-sensor="${CSS.escape(id)}"]`);
  if (!section) {
    section = document.createElement("div");
    section.className = "sensor";
    section.dataset.sensor = id;
    const title = document.createElement("h3");
    title.textContent = id;
    const cards = document.createElement("div");
    cards.className = "cards";
    section.append(title, cards);
    $("sensors").append(section);
  }
  return section.querySelector(".cards");
}

function trackCard(track) {
  let card = document.querySelector(`.track[data-key="${CSS.escape(track.key)}"]`);
  if (card) return card;
  card = document.createElement("div");
  card.className = "track";
  card.dataset.key = track.key;
  card.innerHTML = `
    <div class="who"><span class="name"></span> <span class="id muted"></span></div>
    <div class="numbers muted"><span class="score"></span> · <span class="windows"></span> · track <span class="tid"></span></div>
    <div class="views"><canvas class="front" width="90" height="110" title="front (x, y)"></canvas>
      <canvas class="side" width="90" height="110" title="side (z, y)"></canvas></div>
    <form class="enroll" hidden><input class="enroll-name" placeholder="name" aria-label="enroll as"><button>enroll</button></form>`;
  card.querySelector(".enroll").addEventListener("submit", (e) => {
    e.preventDefault();
    const current = picture.tracks.get(card.dataset.key);
    const name = card.querySelector(".enroll-name").value.trim();
    if (current && current.identity && name) change("enroll", { id: current.identity, name });
  });
  sensorSection(track).append(card);
  return card;
}

// Where the node fused the silhouette channel: what it alone said (schema_minor 2's channels).
function silhouettes(track) {
  const channels = track.channels;
  if (!channels || !channels.silhouette) return "";
  return channels.agree ? " · silhouettes agree" : ` · silhouettes: ${channels.silhouette.name || "-"}`;
}

function drawTrack(track) {
  const card = trackCard(track);
  const name = track.name === null ? "unknown" : track.name;
  card.querySelector(".name").textContent = track.known ? name : `unknown (nearest: ${name})`;
  card.querySelector(".id").textContent = track.identity === null ? "" : `#${track.identity}`;
  card.classList.toggle("unknown", !track.known);
  const threshold = track.threshold === null || track.threshold === undefined ? "" : ` / ${fmt(track.threshold)}`;
  card.querySelector(".score").textContent = `distance ${fmt(track.distance)}${threshold}${silhouettes(track)}`;
  card.querySelector(".windows").textContent = `${track.windows} windows`;
  card.querySelector(".tid").textContent = track.track;
  const anonymous = typeof track.name === "string" && /^anonymous-\d+$/.test(track.name) && track.known;
  card.querySelector(".enroll").hidden = !(anonymous && canWrite());
  if (track.window) {
    drawSkeleton(card.querySelector(".front"), track.window, 0);
    drawSkeleton(card.querySelector(".side"), track.window, 2);
  }
}

// One view of a window: x (front) or z (side) across, y up; older frames fainter, the newest drawn last.
function drawSkeleton(canvas, frames, across) {
  const g = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, scale = h / 2.2;
  g.clearRect(0, 0, w, h);
  const last = frames[frames.length - 1];
  const hip = last[0];
  if (!hip || hip[0] === null) return;
  const X = (p) => w / 2 + (p[across] - hip[across]) * scale * (across === 2 ? -1 : 1);
  const Y = (p) => h * 0.45 - (p[1] - hip[1]) * scale;
  frames.forEach((frame, i) => {
    g.strokeStyle = i === frames.length - 1 ? "#1d4ed8" : "rgba(29, 78, 216, 0.15)";
    g.lineWidth = i === frames.length - 1 ? 2 : 1;
    g.beginPath();
    for (let j = 1; j < PARENTS.length; j++) {
      const a = frame[j], b = frame[PARENTS[j]];
      if (!a || !b || a[0] === null || b[0] === null) continue;
      g.moveTo(X(a), Y(a));
      g.lineTo(X(b), Y(b));
    }
    g.stroke();
  });
}

function drawTimeline(lines) {
  const list = $("timeline");
  for (const line of lines) {
    const item = document.createElement("li");
    item.className = `line ${line.kind}`;
    const time = new Date(line.t * 1000).toLocaleTimeString();
    const who = line.kind === "restart" ? `${line.publisher} restarted` : describe(line);
    item.textContent = `${time}  ${line.sensor ?? ""} ${line.track ?? ""}  ${who}`;
    list.prepend(item);
  }
  while (list.children.length > TIMELINE_SHOWN) list.lastChild.remove();
  $("timeline-count").textContent = `(${list.children.length} shown)`;
}

function describe(line) {
  const name = line.name ?? "unknown";
  switch (line.kind) {
    case "start": return "started";
    case "end": return `ended: ${name}`;
    case "named": return `named ${name} (${fmt(line.distance)})`;
    case "enrolled": return `enrolled as ${name}`;
    default: return `unknown (nearest ${name}, ${fmt(line.distance)})`;
  }
}

function drawPublishers() {
  const panel = $("publishers");
  panel.replaceChildren();
  for (const p of picture.publishers.values()) {
    const card = document.createElement("div");
    card.className = "publisher";
    const rates = p.rates || {}, dropped = p.dropped || {}, latency = p.latency || {};
    const age = p.received_at ? Date.now() / 1000 - p.received_at : null;
    const state = p.finished ? "finished" : age !== null && age > 5 ? `silent ${age.toFixed(0)} s` : "running";
    card.innerHTML = `<strong></strong> <span class="muted state"></span>
      <div class="muted numbers"></div>`;
    card.querySelector("strong").textContent = p.id;
    card.querySelector(".state").textContent = state;
    card.querySelector(".numbers").textContent =
      `${fmt(rates.frames, 1)} frames/s · ${fmt(rates.windows, 1)} windows/s · ${fmt(rates.decisions, 1)} decisions/s · ` +
      `dropped ${dropped.frames ?? 0} frames, ${dropped.windows ?? 0} windows, ${dropped.events ?? 0} events · ` +
      `latency p50 ${fmt(latency.node_ms_p50, 1)} ms, p95 ${fmt(latency.node_ms_p95, 1)} ms (node), ` +
      `${fmt(latency.transport_ms_p50, 1)} ms (to here) · threshold ${p.threshold === undefined ? "–" : fmt(p.threshold)}`;
    panel.append(card);
  }
  drawDet();
}

function drawFeed() {
  const f = picture.feed || {}, page = picture.page || {};
  $("endpoint").textContent = picture.about.endpoint || "";
  $("feed").textContent =
    `${f.received ?? 0} events · ${f.malformed ?? 0} malformed · ${f.gaps ?? 0} lost · ${f.restarts ?? 0} restarts · ` +
    `this page: ${page.dropped ?? 0} dropped, ${page.coalesced ?? 0} coalesced`;
}

// --- the DET plot and the threshold in use ------------------------------------------------------------------
function thresholdInUse() {
  for (const p of picture.publishers.values()) if (p.threshold !== undefined && p.threshold !== null) return p.threshold;
  return null;
}

function drawDet() {
  const canvas = $("det"), g = canvas.getContext("2d");
  const det = picture.about.det, using = thresholdInUse();
  g.clearRect(0, 0, canvas.width, canvas.height);
  const note = $("det-note");
  if (!det) {
    canvas.hidden = true;
    note.textContent = `threshold in use: ${using === null ? "none (the nearest identity is always named)" : fmt(using)}` +
      " · start the dashboard with --threshold FILE for its DET data";
    return;
  }
  canvas.hidden = false;
  const points = [...det.matcher, ...det.verification].filter((p) => p.far !== null && p.far > 0);
  const withFrr = points.filter((p) => p.frr !== null);
  const L = 40, B = 30, W = canvas.width - L - 10, H = canvas.height - B - 10;
  const lo = Math.floor(Math.log10(Math.min(1e-3, ...points.map((p) => p.far))));
  const X = (far) => L + ((Math.log10(far) - lo) / -lo) * W;
  const yMax = withFrr.length ? 1 : Math.max(...points.map((p) => p.threshold), using ?? 0) * 1.1 || 1;
  const Y = (v) => 10 + H - (v / yMax) * H;
  g.strokeStyle = "#888";
  g.strokeRect(L, 10, W, H);
  g.fillStyle = "#555";
  g.font = "10px sans-serif";
  for (let e = lo; e <= 0; e++) g.fillText(`1e${e}`, X(10 ** e) - 10, 10 + H + 12);
  g.fillText("FAR", L + W / 2, canvas.height - 4);
  g.save();
  g.translate(10, 10 + H / 2);
  g.rotate(-Math.PI / 2);
  g.fillText(withFrr.length ? "FRR" : "threshold", -20, 0);
  g.restore();
  g.fillText(fmt(yMax, 2), 14, 18);
  g.fillText("0", 28, 10 + H);
  g.fillStyle = "#1d4ed8";
  g.fillText("● matcher (the node's)", L + 6, 22);
  g.fillStyle = "#9ca3af";
  g.fillText("● verification", L + 6, 34);
  const series = withFrr.length ? withFrr.map((p) => [p.far, p.frr, p]) : points.map((p) => [p.far, p.threshold, p]);
  for (const table of ["matcher", "verification"]) {
    const mine = series.filter((s) => s[2].table === table).sort((a, b) => a[0] - b[0]);
    g.strokeStyle = g.fillStyle = table === "matcher" ? "#1d4ed8" : "#9ca3af";
    g.beginPath();
    mine.forEach(([far, v], i) => (i ? g.lineTo(X(far), Y(v)) : g.moveTo(X(far), Y(v))));
    g.stroke();
    for (const [far, v, p] of mine) {
      const used = using !== null && Math.abs(p.threshold - using) < 1e-9;
      g.beginPath();
      g.arc(X(far), Y(v), used ? 5 : 3, 0, 2 * Math.PI);
      g.fill();
      if (used) g.fillText(`in use: ${fmt(using)}`, X(far) + 6, Y(v) - 6);
    }
  }
  note.textContent = `${det.source} · ${det.file}` + (det.eer !== null ? ` · EER ${fmt(det.eer)}` : "") +
    ` · threshold in use: ${using === null ? "none" : fmt(using)}` +
    (withFrr.length ? "" : " · no FRR without labels: threshold against target FAR");
}

// --- the gallery -----------------------------------------------------------------------------------------------
let galleryTimer = null;

function canWrite() {
  return Boolean(token && picture.about.gallery && picture.about.gallery.writable);
}

function setupGallery() {
  const gallery = picture.about.gallery;
  $("gallery-panel").hidden = !gallery;
  if (!gallery) return;
  $("gallery-where").textContent = gallery.where + (gallery.writable ? "" : " (read-only)");
  $("token-state").textContent = !gallery.writable ? "" : token ? "changes allowed" : "read-only until a token is given";
  loadGallery();
}

function galleryChanged(change) {
  if (change.change) message(describeChange(change.change));
  clearTimeout(galleryTimer);
  galleryTimer = setTimeout(loadGallery, 100);
}

function describeChange(c) {
  if (c.merged !== undefined) return `merged ${c.merged_name} into ${c.name} (${c.moved} embeddings)`;
  if (c.removed !== undefined) return `removed ${c.name} (${c.embeddings} embeddings)`;
  if (c.was !== undefined) return `${c.was} is now ${c.name}`;
  return "the gallery changed";
}

function message(text, error = false) {
  const node = $("gallery-message");
  node.textContent = text;
  node.className = error ? "error" : "muted";
}

async function loadGallery() {
  const query = $("search").value;
  const answer = await fetch(`/api/gallery?q=${encodeURIComponent(query)}`);
  if (!answer.ok) return message((await answer.json()).error, true);
  const list = await answer.json();
  $("gallery-count").textContent = `${list.matching} of ${list.total}`;
  const body = $("gallery").querySelector("tbody");
  body.replaceChildren();
  const writable = canWrite();
  for (const identity of list.identities) {
    const row = document.createElement("tr");
    row.dataset.id = identity.id;
    row.innerHTML = `<td></td><td class="name"></td><td></td><td class="actions"></td>`;
    row.children[0].textContent = identity.id;
    row.children[1].textContent = identity.name + (identity.anonymous ? " (anonymous)" : "");
    row.children[2].textContent = identity.embeddings;
    if (writable) row.children[3].append(...actions(identity, list.identities));
    body.append(row);
  }
}

function actions(identity, all) {
  const name = document.createElement("input");
  name.className = "rename-name";
  name.placeholder = identity.anonymous ? "enroll as…" : "new name";
  name.setAttribute("aria-label", `new name for ${identity.name}`);
  const rename = button(identity.anonymous ? "enroll" : "rename", "rename", () => {
    if (name.value.trim()) change(identity.anonymous ? "enroll" : "rename", { id: identity.id, name: name.value });
  });
  const into = document.createElement("select");
  into.className = "merge-into";
  into.setAttribute("aria-label", `merge ${identity.name} into`);
  into.append(new Option("merge into…", ""));
  for (const other of all) if (other.id !== identity.id) into.append(new Option(`${other.name} (#${other.id})`, other.id));
  const merge = button("merge", "merge", () => {
    if (into.value) change("merge", { source: identity.id, into: Number(into.value) });
  });
  const remove = button("remove", "remove", () => {
    if (remove.dataset.armed) change("remove", { id: identity.id });
    else {
      remove.dataset.armed = "1";
      remove.textContent = "really remove?";
    }
  });
  return [name, rename, into, merge, remove];
}

function button(text, kind, onClick) {
  const node = document.createElement("button");
  node.type = "button";
  node.className = kind;
  node.textContent = text;
  node.addEventListener("click", onClick);
  return node;
}

async function change(what, body) {
  const answer = await fetch(`/api/gallery/${what}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
    body: JSON.stringify(body),
  });
  const result = await answer.json();
  if (!answer.ok) return message(result.error, true);
  message(describeChange(result));
  loadGallery();
}

// --- start -------------------------------------------------------------------------------------------------------
takeToken();
$("search").addEventListener("input", () => {
  clearTimeout(galleryTimer);
  galleryTimer = setTimeout(loadGallery, 150);
});
$("token-save").addEventListener("click", () => {
  token = $("token").value.trim() || null;
  if (token) sessionStorage.setItem("gaitwatch-token", token);
  $("token").value = "";
  setupGallery();
  for (const key of picture.tracks.keys()) dirty.tracks.add(key);
  schedule();
});
connect();
