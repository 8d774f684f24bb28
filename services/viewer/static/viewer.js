// The viewer's page: plain DOM, no framework, nothing loaded from elsewhere.
// Every string that came from an event goes into the page as text, never as HTML.

const $ = (selector) => document.querySelector(selector);

const state = {
  filter: "",
  events: [],          // newest first, at most `capacity`
  status: null,        // the buffer's last reported state
  config: null,        // /api/status: which collaborators the viewer has
  maxSeq: 0,           // the newest sequence number shown (a reconnect may repeat some)
  capacity: 1000,
  selected: null,      // seq of the event in the detail pane
  stream: null,
  timelineSubject: null,
  tab: "events",
};

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function api(path, options = {}) {
  const response = await fetch(path, options);
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = { error: text }; }
  return { ok: response.ok, status: response.status, body };
}

// Write actions (send, redeliver, discard) --------------------------------------------------
// The viewer allows them as VIEWER_WRITE_ACTIONS says (/api/status `write_actions`): "off"
// disables their controls, "token" asks for the token once per tab and sends it as a bearer.

const WRITES_OFF = "Write actions are off on this viewer (VIEWER_WRITE_ACTIONS=off): it only shows events.";
const TOKEN_KEY = "shop.viewer.writeToken";

function writesOff() {
  return state.config?.write_actions === "off";
}

function writeControl(button) {
  if (writesOff()) {
    button.disabled = true;
    button.title = WRITES_OFF;
  }
  return button;
}

// A write request: with the bearer token in token mode, asked for when the tab has none.
async function write(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  if (state.config?.write_actions === "token") {
    let token = sessionStorage.getItem(TOKEN_KEY);
    if (!token) token = (prompt("This viewer's write token (VIEWER_WRITE_ACTIONS=token):") || "").trim();
    if (!token) return { ok: false, status: 401, body: { error: "no write token given" } };
    sessionStorage.setItem(TOKEN_KEY, token);
    headers.Authorization = `Bearer ${token}`;
  }
  const answer = await api(path, { ...options, headers });
  if (answer.status === 401) sessionStorage.removeItem(TOKEN_KEY);
  return answer;
}

function hue(text) {
  let hash = 0;
  for (const char of text) hash = (hash * 31 + char.codePointAt(0)) >>> 0;
  return hash % 360;
}

function typeChip(type) {
  const h = hue(type);
  return el("span", { class: "type-chip", style: `background:hsl(${h} 70% 92%);color:hsl(${h} 55% 28%)` }, type);
}

function clock(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return date.toLocaleTimeString([], { hour12: false }) + "." + String(date.getMilliseconds()).padStart(3, "0");
}

function duration(ms) {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(2)} s`;
  return `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
}

function showNotice(text) {
  const notice = $("#notice");
  notice.textContent = text;
  notice.hidden = !text;
}

// Tabs ------------------------------------------------------------------------------------

function selectTab(name) {
  state.tab = name;
  for (const button of document.querySelectorAll(".tabs button")) {
    button.setAttribute("aria-selected", String(button.dataset.tab === name));
  }
  for (const panel of document.querySelectorAll(".tab")) panel.hidden = panel.dataset.panel !== name;
  if (name === "topology") loadTopology();
  if (name === "deadletters") loadDeadLetters();
  if (name === "timeline") loadSubjects();
  history.replaceState(null, "", `#${name}`);
}

// Status ----------------------------------------------------------------------------------

function setConnection(kind, text) {
  const pill = $("#connection");
  pill.className = `pill pill-${kind}`;
  pill.textContent = text;
}

function showBuffer(status) {
  state.capacity = status.capacity;
  state.status = { ...status };
  const dropped = status.dropped
    ? ` · ${status.dropped} older dropped (keeps the last ${status.capacity})`
    : "";
  $("#buffer").textContent = `${status.size} of ${status.capacity} kept${dropped}`;
  $("#buffer").dataset.dropped = String(status.dropped);
}

// Between the stream's status messages, count what arrives (exact when nothing is filtered out;
// the next status message corrects it otherwise).
function countArrival(seq) {
  const status = state.status;
  if (!status || seq <= status.last_seq) return;
  const size = status.size + (seq - status.last_seq);
  showBuffer({
    ...status,
    last_seq: seq,
    size: Math.min(size, status.capacity),
    dropped: status.dropped + Math.max(0, size - status.capacity),
  });
}

// Events ----------------------------------------------------------------------------------

async function loadEvents() {
  const query = new URLSearchParams();
  if (state.filter) query.set("filter", state.filter);
  const { ok, body } = await api(`/api/events?${query}`);
  if (!ok) {
    $("#filter-error").textContent = body.error || "the filter was refused";
    return false;
  }
  $("#filter-error").textContent = "";
  state.events = body.events;
  state.maxSeq = body.last_seq;
  showBuffer(body);
  renderEvents();
  openStream(body.last_seq);
  return true;
}

function openStream(after) {
  if (state.stream) state.stream.close();
  const query = new URLSearchParams({ after: String(after) });
  if (state.filter) query.set("filter", state.filter);
  const stream = new EventSource(`/api/stream?${query}`);
  state.stream = stream;
  setConnection("wait", "connecting");
  stream.addEventListener("open", () => setConnection("live", "live"));
  stream.addEventListener("error", () => {
    setConnection(stream.readyState === EventSource.CLOSED ? "down" : "wait",
      stream.readyState === EventSource.CLOSED ? "disconnected" : "reconnecting");
  });
  stream.addEventListener("status", (message) => showBuffer(JSON.parse(message.data)));
  stream.addEventListener("gap", (message) => {
    const gap = JSON.parse(message.data);
    showNotice(`${gap.missed} events arrived while this page was not listening and are no longer in the viewer's history.`);
  });
  stream.addEventListener("cloudevent", (message) => addEvent(JSON.parse(message.data)));
}

function addEvent(event) {
  if (event.seq <= state.maxSeq) return;
  state.maxSeq = event.seq;
  countArrival(event.seq);
  state.events.unshift(event);
  if (state.events.length > state.capacity) state.events.length = state.capacity;
  const rows = $("#event-rows");
  rows.prepend(eventRow(event, true));
  while (rows.children.length > state.capacity) rows.lastChild.remove();
  $("#events-empty").hidden = true;
  if (state.timelineSubject && event.subject === state.timelineSubject) showTimeline(state.timelineSubject);
  if (state.tab === "timeline" && !state.timelineSubject) loadSubjects();
}

function eventRow(event, fresh = false) {
  const row = el("tr", {
    class: [fresh ? "fresh" : "", event.seq === state.selected ? "selected" : ""].join(" ").trim() || null,
    dataset: { seq: event.seq, type: event.type, id: event.id },
    onclick: () => selectEvent(event.seq),
  },
  el("td", { title: event.received_at }, clock(event.received_at)),
  el("td", {}, typeChip(event.type), event.deliveries > 1 ? el("span", { class: "dup", title: "delivered more than once (same source and id)" }, `×${event.deliveries}`) : null),
  el("td", { title: event.source }, event.source),
  el("td", { title: event.subject || "" }, event.subject || ""),
  el("td", { title: event.id }, event.id));
  return row;
}

function renderEvents() {
  const rows = $("#event-rows");
  rows.replaceChildren(...state.events.map((event) => eventRow(event)));
  $("#events-empty").hidden = state.events.length > 0;
}

function selectEvent(seq) {
  state.selected = seq;
  for (const row of document.querySelectorAll("#event-rows tr")) {
    row.classList.toggle("selected", Number(row.dataset.seq) === seq);
  }
  const event = state.events.find((item) => item.seq === seq);
  if (event) renderDetail(event);
}

function kvTable(pairs) {
  return el("table", { class: "kv" }, Object.entries(pairs).map(([key, value]) =>
    el("tr", {}, el("td", {}, key), el("td", {}, typeof value === "string" ? value : JSON.stringify(value)))));
}

function renderDetail(event) {
  const pane = $("#event-detail");
  const data = "data" in event
    ? (typeof event.data === "string" ? event.data : JSON.stringify(event.data, null, 2))
    : ("data_base64" in event ? `(binary, base64)\n${event.data_base64}` : "(no data)");
  const extensions = Object.keys(event.extensions).length
    ? kvTable(event.extensions)
    : el("p", { class: "muted" }, "none");
  pane.replaceChildren(
    el("h2", {}, typeChip(event.type)),
    el("p", { class: "muted" }, `received ${event.received_at}`, event.deliveries > 1 ? ` · delivered ${event.deliveries} times` : ""),
    event.subject
      ? el("p", {}, "subject ", el("span", { class: "link mono", onclick: () => { selectTab("timeline"); showTimeline(event.subject); } }, event.subject), el("span", { class: "muted" }, " (timeline)"))
      : null,
    el("h3", {}, "attributes"), kvTable(event.attributes),
    el("h3", {}, "extensions"), extensions,
    el("h3", {}, "data"), el("pre", { class: "json", id: "event-data" }, data),
  );
}

// Timeline --------------------------------------------------------------------------------

async function showTimeline(subject) {
  state.timelineSubject = subject;
  $("#timeline-subject").value = subject;
  const { ok, body } = await api(`/api/timeline?${new URLSearchParams({ subject })}`);
  const box = $("#timeline");
  if (!ok) {
    box.replaceChildren(el("p", { class: "error" }, body.error));
    return;
  }
  if (!body.events.length) {
    box.replaceChildren(el("p", { class: "empty" }, `No event with subject ${subject} in the viewer's history.`));
    return;
  }
  box.replaceChildren(
    el("div", { class: "timeline-head" },
      el("h2", {}, subject),
      el("span", { class: "muted", id: "timeline-summary" }, `${body.events.length} events over ${duration(body.duration_ms)}`)),
    ...body.events.map((event, index) => el("div", { class: "step", dataset: { type: event.type } },
      el("div", { class: "offset" }, index === 0 ? clock(event.received_at) : `+${duration(event.offset_ms)}`),
      el("div", { class: "rail" }),
      el("div", { class: "body" },
        typeChip(event.type),
        index > 0 ? el("span", { class: "delay" }, `${duration(event.delay_ms)} after the previous`) : null,
        el("div", { class: "muted mono" }, `${event.source} · ${event.id}`)))),
  );
}

async function loadSubjects() {
  const { ok, body } = await api("/api/subjects");
  if (!ok) return;
  $("#subject-chips").replaceChildren(...body.subjects.map((item) =>
    el("button", { type: "button", class: "secondary", title: `${item.count} events, last ${item.last_type}`, onclick: () => showTimeline(item.subject) },
      `${item.subject} (${item.count})`)));
}

// Send ------------------------------------------------------------------------------------

function parseExtensions(text) {
  const extensions = {};
  for (const line of text.split("\n")) {
    const trimmed = line.trim();
    if (!trimmed) continue;
    const at = trimmed.indexOf("=");
    if (at < 1) throw new Error(`extension line "${trimmed}" is not name=value`);
    extensions[trimmed.slice(0, at).trim()] = trimmed.slice(at + 1).trim();
  }
  return extensions;
}

async function sendEvent(form) {
  const result = $("#send-result");
  const fields = new FormData(form);
  let extensions;
  try {
    extensions = parseExtensions(fields.get("extensions") || "");
  } catch (error) {
    result.className = "error";
    result.textContent = error.message;
    return;
  }
  const payload = { type: fields.get("type"), extensions, mode: fields.get("mode") };
  for (const name of ["source", "id", "subject", "datacontenttype", "data"]) {
    if (fields.get(name)) payload[name] = fields.get(name);
  }
  result.className = "muted";
  result.textContent = "sending…";
  const { ok, status, body } = await write("/api/send", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(payload),
  });
  if (ok) {
    result.className = "ok";
    result.textContent = `${body.status} from the broker (${body.mode} mode): ${body.type} ${body.id}`;
  } else {
    result.className = "error";
    const where = body.field ? ` (${body.field})` : "";
    result.textContent = `${status}: ${body.error}${where}`;
  }
  result.dataset.status = String(ok ? body.status : status);
}

// Topology --------------------------------------------------------------------------------

async function loadTopology() {
  const { ok, body } = await api("/api/topology");
  const source = $("#topology-source");
  if (!ok) {
    source.className = "error";
    source.textContent = body.error;
    return;
  }
  source.className = "muted";
  source.textContent = body.source
    ? `From ${body.source}.`
    : "No topology configured: set TOPOLOGY (JSON) or TOPOLOGY_URL on the viewer.";
  $("#topology-rows").replaceChildren(...body.triggers.map((trigger) => el("tr", {},
    el("td", { class: "mono" }, trigger.name),
    el("td", { class: "mono" }, trigger.filter),
    el("td", { class: "mono" }, trigger.subscriber),
    el("td", { class: "mono" }, trigger.deadLetterSink || brokerSink(body, trigger) || "—"))));
  drawGraph(body);
}

function brokerSink(topology, trigger) {
  const broker = topology.brokers.find((item) => item.name === trigger.broker && item.namespace === trigger.namespace);
  return broker ? broker.deadLetterSink : null;
}

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attributes = {}, text = null) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text !== null) node.textContent = text;
  return node;
}

function drawGraph(topology) {
  const box = $("#topology-graph");
  if (!topology.triggers.length) {
    box.replaceChildren(el("p", { class: "empty" }, "No triggers."));
    return;
  }
  // One node per subscriber, with the filters of every trigger that routes to it.
  const subscribers = new Map();
  const sinks = new Set();
  for (const trigger of topology.triggers) {
    if (!subscribers.has(trigger.subscriber)) subscribers.set(trigger.subscriber, []);
    subscribers.get(trigger.subscriber).push(trigger.filter);
    const sink = trigger.deadLetterSink || brokerSink(topology, trigger);
    if (sink) sinks.add(sink);
  }
  for (const sink of sinks) if (!subscribers.has(sink)) subscribers.set(sink, []);
  const rows = [...subscribers.entries()].map(([name, filters]) => ({
    name, filters, sink: sinks.has(name), labels: filters.length ? filters : ["dead letters"],
  }));
  // The filters sit in a column above the last, straight stretch of each edge; the curves from
  // the broker end where that column starts, so no line crosses a label.
  const lineHeight = 15;
  const charWidth = 7;
  const longest = Math.max(...rows.flatMap((row) => row.labels.map((label) => label.length)));
  const labelWidth = longest * charWidth + 24;
  let y = 16;
  for (const row of rows) {
    row.top = y;
    row.cy = y + row.labels.length * lineHeight + 6;
    y = row.cy + 30;
  }
  const broker = { x: 16, w: 160, h: 48 };
  const curveWidth = 260;
  const labelX = broker.x + broker.w + curveWidth;
  const nodeX = labelX + labelWidth;
  const nodeW = 190;
  const width = nodeX + nodeW + 16;
  const height = Math.max(y, 120);
  broker.y = height / 2 - broker.h / 2;
  const graph = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "trigger graph" });
  const fromX = broker.x + broker.w;
  const fromY = broker.y + broker.h / 2;
  for (const row of rows) {
    const dead = !row.filters.length;
    const curve = `M${fromX},${fromY} C${fromX + curveWidth / 2},${fromY} ${labelX - curveWidth / 2},${row.cy} ${labelX},${row.cy} L${nodeX},${row.cy}`;
    graph.append(svg("path", { class: dead ? "edge dead" : "edge", d: curve }));
    row.labels.forEach((label, index) => {
      const ly = row.cy - 6 - (row.labels.length - 1 - index) * lineHeight;
      graph.append(svg("text", { class: dead ? "label dead" : "label", x: nodeX - 10, y: ly, "text-anchor": "end" }, label));
    });
    if (row.sink && !dead) {
      const sinkCurve = `M${fromX},${fromY + 12} C${fromX + curveWidth / 2},${fromY + 12} ${labelX - curveWidth / 2},${row.cy + 10} ${labelX},${row.cy + 10} L${nodeX},${row.cy + 10}`;
      graph.append(svg("path", { class: "edge dead", d: sinkCurve }));
    }
    const node = svg("g", { class: dead ? "node sink" : "node", "data-name": row.name });
    node.append(svg("rect", { x: nodeX, y: row.cy - 18, width: nodeW, height: 36, rx: 8 }));
    node.append(svg("text", { x: nodeX + nodeW / 2, y: row.cy + 5, "text-anchor": "middle" }, row.name));
    graph.append(node);
  }
  const brokerName = topology.brokers.map((item) => item.name).join(", ") || "broker";
  const brokerNode = svg("g", { class: "node broker" });
  brokerNode.append(svg("rect", { x: broker.x, y: broker.y, width: broker.w, height: broker.h, rx: 10 }));
  brokerNode.append(svg("text", { x: broker.x + broker.w / 2, y: broker.y + 29, "text-anchor": "middle" }, `Broker ${brokerName}`));
  graph.append(brokerNode);
  box.replaceChildren(graph);
}

// Dead letters ----------------------------------------------------------------------------

async function loadDeadLetters() {
  const message = $("#dead-letters-message");
  if (state.config && !state.config.deadletter) {
    message.className = "muted";
    message.textContent = "The viewer does not know the deadletter service: set DEADLETTER_URL.";
    return;
  }
  const { ok, body } = await api("/api/deadletters?limit=200");
  if (!ok) {
    message.className = "error";
    message.textContent = body.error;
    return;
  }
  message.className = "muted";
  message.textContent = `${body.total} dead letters`;
  const badge = $("#dead-letter-count");
  const pending = body.dead_letters.filter((item) => !item.redelivered_at).length;
  badge.textContent = String(pending);
  badge.hidden = pending === 0;
  $("#dead-letters-empty").hidden = body.total > 0;
  $("#dead-letter-rows").replaceChildren(...body.dead_letters.map(deadLetterRow));
}

function deadLetterRow(item) {
  const status = item.redelivered_at ? "redelivered" : "pending";
  return el("tr", { dataset: { id: item.id, eventId: item.event_id, state: status }, onclick: () => showDeadLetter(item.id) },
    el("td", { class: "mono" }, item.id),
    el("td", { title: item.received_at }, clock(item.received_at)),
    el("td", {}, typeChip(item.type)),
    el("td", { class: "mono" }, item.subject || ""),
    el("td", { class: "mono" }, item.destination || ""),
    el("td", { class: "mono" }, item.error_code ?? ""),
    el("td", { class: "mono", title: item.error_data || "" }, (item.error_data || "").slice(0, 60)),
    el("td", { class: `state-${status}` }, item.redelivered_at ? `redelivered ${clock(item.redelivered_at)}` : "pending"),
    el("td", {},
      writeControl(el("button", { type: "button", class: "small", onclick: (e) => { e.stopPropagation(); redeliver(item.id); } }, "Redeliver")), " ",
      writeControl(el("button", { type: "button", class: "small danger", onclick: (e) => { e.stopPropagation(); discard(item.id); } }, "Discard"))));
}

async function showDeadLetter(id) {
  const { ok, body } = await api(`/api/deadletters/${id}`);
  const detail = $("#dead-letter-detail");
  detail.hidden = false;
  detail.textContent = ok ? JSON.stringify(body, null, 2) : body.error;
}

async function redeliver(id) {
  const { ok, body } = await write(`/api/deadletters/${id}/redeliver`, { method: "POST" });
  await loadDeadLetters();
  const message = $("#dead-letters-message");
  message.className = ok ? "ok" : "error";
  message.textContent = ok
    ? `Dead letter ${id} redelivered: the broker answered ${body.redelivery.status}.`
    : `Dead letter ${id} was not redelivered: ${body.error}`;
  message.dataset.outcome = ok ? "accepted" : "failed";
}

async function discard(id) {
  const { ok, body } = await write(`/api/deadletters/${id}`, { method: "DELETE" });
  const message = $("#dead-letters-message");
  await loadDeadLetters();
  message.className = ok ? "ok" : "error";
  message.textContent = ok ? `Dead letter ${id} discarded.` : body.error;
}

// Start -----------------------------------------------------------------------------------

async function loadConfig() {
  const { ok, body } = await api("/api/status");
  if (!ok) return;
  state.config = body;
  if (writesOff()) {
    writeControl($("#send-form button[type=submit]"));
    const result = $("#send-result");
    result.className = "muted";
    result.textContent = WRITES_OFF;
  } else if (!body.broker) {
    const result = $("#send-result");
    result.className = "muted";
    result.textContent = "The viewer has no broker to send to: set K_SINK or BROKER_URL.";
  }
}

async function start() {
  for (const button of document.querySelectorAll(".tabs button")) {
    button.addEventListener("click", () => selectTab(button.dataset.tab));
  }
  $("#filter-form").addEventListener("submit", async (submitted) => {
    submitted.preventDefault();
    const previous = state.filter;
    state.filter = $("#filter").value.trim();
    if (!(await loadEvents())) state.filter = previous;
  });
  $("#filter-clear").addEventListener("click", () => {
    $("#filter").value = "";
    state.filter = "";
    loadEvents();
  });
  $("#timeline-form").addEventListener("submit", (submitted) => {
    submitted.preventDefault();
    const subject = $("#timeline-subject").value.trim();
    if (subject) showTimeline(subject);
  });
  $("#send-form").addEventListener("submit", (submitted) => {
    submitted.preventDefault();
    sendEvent(submitted.target);
  });
  $("#dead-letters-refresh").addEventListener("click", loadDeadLetters);
  setInterval(() => { if (state.tab === "deadletters" && !document.hidden) loadDeadLetters(); }, 5000);
  const initial = location.hash.slice(1);
  await loadConfig();
  loadEvents();
  loadDeadLetters();
  if (initial && document.querySelector(`.tabs button[data-tab="${initial}"]`)) selectTab(initial);
}

start();
