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
  catalog: [],         // /api/catalog/types: the Send tab's templates
  trace: null,         // the trace on the Trace tab: {trace_id, spans}
  selectedStep: null,  // id of the timeline step in its detail pane
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

// A cell or value that is absent: a dash, never "null" or "undefined".
function absent() {
  return el("span", { class: "absent", title: "not set" }, "—");
}

// Replace a node's children, leaving out the null ones (replaceChildren would print "null").
function fill(node, ...children) {
  node.replaceChildren(...children.flat().filter((child) => child !== null && child !== undefined && child !== false));
  return node;
}

// The trace id of a W3C traceparent (version-traceid-spanid-flags), or null.
function traceIdOf(traceparent) {
  const match = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/.exec(traceparent || "");
  return match && !/^0+$/.test(match[1]) ? match[1] : null;
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
  if (name === "send") loadCatalog();
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
    if (!state.status) showEmpty("error", `The viewer did not answer: ${body.error || "no answer"}`);
    return false;
  }
  $("#filter-error").textContent = "";
  state.events = body.events;
  state.maxSeq = body.last_seq;
  showBuffer(body);
  renderEvents();
  keepSelectionIfShown();
  openStream(body.last_seq);
  return true;
}

// The detail pane never shows an event the list does not: a filter that hides it says so.
function keepSelectionIfShown() {
  if (state.selected === null || state.events.some((event) => event.seq === state.selected)) return;
  state.selected = null;
  fill($("#event-detail"),
    el("p", { class: "empty", id: "detail-hidden" }, "The event that was shown here does not match the filter, so it is hidden. Click an event to see all of it."));
}

function showEmpty(kind, text) {
  const empty = $("#events-empty");
  empty.dataset.state = kind;
  empty.className = kind === "error" ? "empty error" : "empty";
  fill(empty, text);
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
  el("td", { class: "c-received", title: event.received_at }, clock(event.received_at)),
  el("td", { class: "c-type" }, typeChip(event.type), event.deliveries > 1 ? el("span", { class: "dup", title: "delivered more than once (same source and id)" }, `×${event.deliveries}`) : null),
  el("td", { class: "c-source", title: event.source }, event.source),
  event.subject ? el("td", { class: "c-subject", title: event.subject }, event.subject) : el("td", { class: "c-subject" }, absent()),
  el("td", { class: "c-id", title: event.id }, event.id));
  return row;
}

function renderEvents() {
  const rows = $("#event-rows");
  rows.replaceChildren(...state.events.map((event) => eventRow(event)));
  const filtered = state.filter ? "No event in the viewer's history matches the filter." : "No events yet. Send one from the Send tab.";
  showEmpty(state.filter ? "filtered" : "empty", filtered);
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
    el("tr", {}, el("td", {}, key), el("td", {}, value === null || value === undefined ? absent() : typeof value === "string" ? value : JSON.stringify(value)))));
}

// An event's data as text: JSON pretty-printed, binary as its base64.
function dataText(event) {
  if ("data" in event) return typeof event.data === "string" ? event.data : JSON.stringify(event.data, null, 2);
  return "data_base64" in event ? `(binary, base64)\n${event.data_base64}` : "(no data)";
}

function renderDetail(event) {
  const pane = $("#event-detail");
  const data = dataText(event);
  const extensions = Object.keys(event.extensions).length
    ? kvTable(event.extensions)
    : el("p", { class: "muted" }, "none");
  const traceId = traceIdOf(event.extensions.traceparent);
  fill(pane,
    el("h2", {}, typeChip(event.type)),
    el("p", { class: "mono detail-id", id: "detail-id" }, event.id),
    el("p", { class: "muted" }, `received ${event.received_at}`, event.deliveries > 1 ? ` · delivered ${event.deliveries} times` : ""),
    el("p", {}, "subject ", event.subject
      ? [el("span", { class: "link mono", onclick: () => { selectTab("timeline"); showTimeline(event.subject); } }, event.subject), el("span", { class: "muted" }, " (timeline)")]
      : absent()),
    el("p", { class: "detail-actions" },
      traceId ? el("button", { type: "button", class: "small secondary", id: "detail-trace", onclick: () => openTrace(traceId) }, "Trace") : null,
      el("button", { type: "button", class: "small secondary", id: "detail-deliveries", onclick: () => showDeliveriesIn(pane.querySelector(".deliveries"), { id: event.id, source: event.source }) }, "Deliveries")),
    el("div", { class: "deliveries" }),
    el("h3", {}, "attributes"), kvTable(event.attributes),
    el("h3", {}, "extensions"), extensions,
    el("h3", {}, "data"), el("pre", { class: "json", id: "event-data" }, data),
  );
}

// Timeline --------------------------------------------------------------------------------

async function showTimeline(subject) {
  if (subject !== state.timelineSubject) {
    state.selectedStep = null;
    fill($("#step-detail"), el("p", { class: "empty" }, "Click a step to see which Triggers got the event and how each delivery went."));
  }
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
  const traceId = traceIdOf(body.events[0].extensions.traceparent);
  fill(box,
    el("div", { class: "timeline-head" },
      el("h2", {}, subject),
      el("span", {},
        el("span", { class: "muted", id: "timeline-summary" }, `${plural(body.events.length, "event")} over ${duration(body.duration_ms)}`),
        traceId ? el("button", { type: "button", class: "small secondary", id: "timeline-trace", title: `the trace of ${body.events[0].type}`, onclick: () => openTrace(traceId) }, "Trace") : null)),
    body.events.map((event, index) => timelineStep(event, index)),
  );
  if (state.selectedStep) markStep(state.selectedStep);
}

function timelineStep(event, index) {
  return el("div", { class: "step", dataset: { type: event.type, id: event.id }, tabindex: "0", role: "button", onclick: () => selectStep(event) },
    el("div", { class: "offset" }, index === 0 ? clock(event.received_at) : `+${duration(event.offset_ms)}`),
    el("div", { class: "rail" }),
    el("div", { class: "body" },
      typeChip(event.type),
      index > 0 ? el("span", { class: "delay" }, `${duration(event.delay_ms)} after the previous`) : null,
      el("div", { class: "muted mono" }, `${event.source} · ${event.id}`)));
}

function markStep(key) {
  for (const step of document.querySelectorAll("#timeline .step")) {
    step.classList.toggle("selected", step.dataset.id === key);
  }
}

// A timeline step opens its event and how each Trigger's delivery of it went.
function selectStep(event) {
  state.selectedStep = event.id;
  markStep(event.id);
  const pane = $("#step-detail");
  const traceId = traceIdOf(event.extensions.traceparent);
  const deliveries = el("div", { class: "deliveries", id: "step-deliveries" });
  fill(pane,
    el("h2", {}, typeChip(event.type)),
    el("p", { class: "mono detail-id" }, event.id),
    el("p", { class: "muted" }, `${event.source} · received ${event.received_at}`),
    traceId ? el("p", {}, el("button", { type: "button", class: "small secondary", onclick: () => openTrace(traceId) }, "Trace")) : null,
    deliveries,
    el("h3", {}, "data"), el("pre", { class: "json" }, dataText(event)));
  showDeliveriesIn(deliveries, { id: event.id, source: event.source });
}

// Deliveries: the broker journal's record of one event, per Trigger and attempt ----------------

async function showDeliveriesIn(box, query) {
  fill(box, el("p", { class: "muted" }, "asking the broker's journal…"));
  const { ok, body } = await api(`/api/deliveries?${new URLSearchParams(query)}`);
  if (!ok) {
    fill(box, el("h3", {}, "deliveries"), el("p", { class: "error deliveries-error" }, body?.error || "the journal did not answer"));
    return;
  }
  fill(box, el("h3", {}, "deliveries"), deliveriesTable(body));
}

function deliveriesTable(journalEvent) {
  if (!journalEvent.deliveries.length) return el("p", { class: "muted" }, "No Trigger matched this event.");
  const attempts = new Map();
  for (const attempt of journalEvent.attempts) {
    if (!attempts.has(attempt.trigger)) attempts.set(attempt.trigger, []);
    attempts.get(attempt.trigger).push(attempt);
  }
  return el("div", { class: "delivery-list" },
    journalEvent.deliveries.map((delivery) => deliveryItem(delivery, attempts.get(delivery.trigger) || [])));
}

const FINAL_STATES = {
  delivered: "delivered",
  dead_lettered: "☠ dead-lettered",
  kept: "☠ dead-lettered: kept by the broker (no dead-letter sink)",
  dropped: "☠ dropped: no dead-letter sink took it",
  pending: "pending: retrying",
  dead_lettering: "dead-lettering",
  queued: "queued",
};
const DEAD_STATES = new Set(["dead_lettered", "kept", "dropped"]);

function deliveryItem(delivery, attempts) {
  const dead = DEAD_STATES.has(delivery.state);
  return el("div", { class: `delivery${dead ? " dead" : ""}`, dataset: { trigger: delivery.trigger, state: delivery.state } },
    el("div", { class: "delivery-head" },
      el("span", { class: "mono delivery-trigger" }, delivery.trigger),
      el("span", { class: `delivery-state state-${dead ? "dead" : delivery.state}` }, FINAL_STATES[delivery.state] || delivery.state)),
    attempts.length
      ? el("ol", { class: "attempts" }, attempts.map(attemptItem))
      : el("p", { class: "muted" }, `${delivery.attempts} attempts so far`));
}

function attemptItem(attempt) {
  const target = attempt.target === "subscriber" ? "" : ` to the ${attempt.target.replaceAll("_", " ")}`;
  return el("li", { class: `attempt outcome-${attempt.outcome}`, title: attempt.url },
    el("span", { class: "mono attempt-status" }, attempt.status ?? "no answer"),
    el("span", { class: "muted" }, ` · ${duration(attempt.duration_ms)} · ${attempt.outcome.replace("_", " ")}${target}`),
    attempt.error ? el("div", { class: "error attempt-error" }, attempt.error) : null);
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
  if (fields.get("dataschema")) extensions.dataschema = fields.get("dataschema").trim();
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

// The catalog's types as templates: choosing one fills the form with its schema's example.
async function loadCatalog() {
  if (state.catalog.length) return;
  const { ok, body } = await api("/api/catalog/types");
  if (!ok) return;
  state.catalog = body.types;
  const select = $("#send-template");
  select.append(...body.types.map((item) => el("option", { value: item.type, title: item.description }, `${item.type}  (${item.producer})`)));
}

function applyTemplate(name) {
  const item = state.catalog.find((entry) => entry.type === name);
  $("#send-template-description").textContent = item ? item.description : "";
  if (!item) return;
  const form = $("#send-form");
  form.elements.type.value = item.type;
  form.elements.source.value = item.source;
  form.elements.datacontenttype.value = item.datacontenttype;
  form.elements.dataschema.value = item.dataschema || "";
  form.elements.data.value = JSON.stringify(item.example, null, 2);
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
    el("td", { class: "row-actions" },
      redeliverMenu(item.id), " ",
      writeControl(el("button", { type: "button", class: "small danger", onclick: (e) => { e.stopPropagation(); discard(item.id); } }, "Discard"))));
}

// Redeliver offers where to: straight to the subscriber that failed it, or back through the
// broker (every Trigger that matches gets it again).
const REDELIVER_TO = [
  ["subscriber", "to the subscriber only", "post it straight to the subscriber that failed it"],
  ["broker", "through the broker", "post it to the broker again: every Trigger that matches gets it"],
];

function redeliverMenu(id) {
  const menu = el("div", { class: "menu", onclick: (e) => e.stopPropagation() });
  const choices = el("div", { class: "menu-choices", hidden: true },
    REDELIVER_TO.map(([to, label, title]) => writeControl(el("button", {
      type: "button", class: "small secondary", dataset: { to }, title,
      onclick: () => { choices.hidden = true; redeliver(id, to); },
    }, label))));
  const opener = writeControl(el("button", { type: "button", class: "small", "aria-haspopup": "true", onclick: () => { choices.hidden = !choices.hidden; } }, "Redeliver ▾"));
  menu.append(opener, choices);
  return menu;
}

async function showDeadLetter(id) {
  const { ok, body } = await api(`/api/deadletters/${id}`);
  const detail = $("#dead-letter-detail");
  detail.hidden = false;
  detail.textContent = ok ? JSON.stringify(body, null, 2) : body.error;
}

async function redeliver(id, to) {
  const { ok, body } = await write(`/api/deadletters/${id}/redeliver`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ to }),
  });
  await loadDeadLetters();
  const message = $("#dead-letters-message");
  const where = to === "broker" ? "through the broker" : "to the subscriber";
  const who = to === "broker" ? "the broker" : "the subscriber";
  const status = body?.redelivery?.status;
  message.className = ok ? "ok" : "error";
  message.textContent = ok
    ? `Dead letter ${id} redelivered ${where}: ${who} answered ${status ?? "(no status)"}.`
    : `Dead letter ${id} was not redelivered ${where}: ${body?.error || "no answer"}`;
  message.dataset.outcome = ok ? "accepted" : "failed";
  message.dataset.to = to;
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

function bindControls() {
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
  $("#send-template").addEventListener("change", (changed) => applyTemplate(changed.target.value));
  $("#trace-form").addEventListener("submit", (submitted) => {
    submitted.preventDefault();
    const traceId = $("#trace-id").value.trim().toLowerCase();
    if (traceId) openTrace(traceId);
  });
}

async function start() {
  bindControls();
  setInterval(() => { if (state.tab === "deadletters" && !document.hidden) loadDeadLetters(); }, 5000);
  const initial = location.hash.slice(1);
  await loadConfig();
  loadEvents();
  loadDeadLetters();
  if (initial && document.querySelector(`.tabs button[data-tab="${initial}"]`)) selectTab(initial);
}

// Trace -----------------------------------------------------------------------------------
// Every span of one trace on one time axis: offset by start, width by duration, indented by
// depth below its parent, coloured by status; delivery spans say their attempt and answer.

async function openTrace(traceId) {
  selectTab("trace");
  $("#trace-id").value = traceId;
  const box = $("#trace-waterfall");
  fill(box, el("p", { class: "muted" }, `loading trace ${traceId}…`));
  fill($("#span-detail"), el("p", { class: "empty" }, "Click a span to see its attributes."));
  const { ok, status, body } = await api(`/api/traces/${encodeURIComponent(traceId)}`);
  if (!ok) {
    const why = status === 404 ? `No spans of trace ${traceId} (yet): ${body?.error || "not found"}` : `${status}: ${body?.error || "no answer"}`;
    fill(box, el("p", { class: status === 404 ? "empty" : "error", id: "trace-missing" }, why));
    return;
  }
  state.trace = body;
  drawWaterfall(box, body);
}

function spanDepths(spans) {
  const byId = new Map(spans.map((span) => [span.span_id, span]));
  const depths = new Map();
  const depthOf = (span, seen = new Set()) => {
    if (depths.has(span.span_id)) return depths.get(span.span_id);
    const parent = span.parent_span_id ? byId.get(span.parent_span_id) : null;
    const depth = parent && !seen.has(parent.span_id) ? depthOf(parent, seen.add(span.span_id)) + 1 : 0;
    depths.set(span.span_id, depth);
    return depth;
  };
  for (const span of spans) depthOf(span);
  return depths;
}

// Parents before children, siblings by start: the order a waterfall reads in.
function spanOrder(spans) {
  const ids = new Set(spans.map((span) => span.span_id));
  const children = new Map();
  for (const span of spans) {
    const parent = ids.has(span.parent_span_id) ? span.parent_span_id : null;
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(span);
  }
  const ordered = [];
  const visit = (parent) => {
    for (const span of (children.get(parent) || []).sort((a, b) => a.start_unix_nano - b.start_unix_nano)) {
      ordered.push(span);
      visit(span.span_id);
    }
  };
  visit(null);
  return ordered.length === spans.length ? ordered : spans;
}

function drawWaterfall(box, trace) {
  if (!trace.spans.length) {
    fill(box, el("p", { class: "empty" }, "This trace has no spans."));
    return;
  }
  const start = Math.min(...trace.spans.map((span) => span.start_unix_nano));
  const end = Math.max(...trace.spans.map((span) => span.end_unix_nano));
  const total = Math.max(end - start, 1);
  const depths = spanDepths(trace.spans);
  const services = new Set(trace.spans.map((span) => span.service));
  fill(box,
    el("div", { class: "waterfall-head" },
      el("h2", { class: "mono" }, trace.trace_id),
      el("span", { class: "muted", id: "trace-summary" }, `${plural(trace.spans.length, "span")} · ${plural(services.size, "service")} · ${duration(total / 1e6)}`)),
    el("div", { class: "axis" }, el("span", {}, "0"), el("span", {}, duration(total / 2e6)), el("span", {}, duration(total / 1e6))),
    spanOrder(trace.spans).map((span) => spanRow(span, depths.get(span.span_id), start, total)));
}

function plural(count, noun) {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}

function isDelivery(span) {
  return span.attributes["shop.delivery.attempt"] !== undefined;
}

function spanLabel(span) {
  const attributes = span.attributes;
  const parts = [el("span", { class: "span-service" }, span.service), " ", el("span", { class: "span-name" }, span.name)];
  const dead = attributes["shop.dead_lettered"] === true
    ? el("span", { class: "dead-mark", title: "dead-lettered" }, " ☠ dead-lettered")
    : null;
  if (isDelivery(span)) {
    const status = attributes["http.response.status_code"] ?? attributes["error.type"] ?? "no answer";
    parts.push(el("span", { class: "span-attempt" }, `attempt ${attributes["shop.delivery.attempt"]} · ${status}`, dead));
  } else if (dead) {
    parts.push(el("span", { class: "span-attempt" }, dead));
  }
  return parts;
}

function spanRow(span, depth, start, total) {
  const left = ((span.start_unix_nano - start) / total) * 100;
  const width = Math.max(((span.end_unix_nano - span.start_unix_nano) / total) * 100, 0.4);
  const took = duration((span.end_unix_nano - span.start_unix_nano) / 1e6);
  const dead = span.attributes["shop.dead_lettered"] === true;
  return el("div", {
    class: `span-row status-${span.status}${dead ? " dead" : ""}`,
    dataset: { spanId: span.span_id, service: span.service, depth: String(depth) },
    tabindex: "0", role: "button", title: `${span.service} ${span.name}: ${took}`,
    onclick: () => selectSpan(span),
  },
  el("div", { class: "span-label", style: `padding-left:${8 + depth * 16}px` }, spanLabel(span)),
  el("div", { class: "span-track" },
    el("div", { class: "span-bar", style: `left:${left.toFixed(3)}%;width:${width.toFixed(3)}%` }),
    tookLabel(took, left, width)));
}

// The duration beside its bar, or inside its end when the bar reaches the right edge.
function tookLabel(took, left, width) {
  const end = left + width;
  return end > 85
    ? el("span", { class: "span-took inside", style: `right:${Math.max(100 - end, 0).toFixed(3)}%` }, took)
    : el("span", { class: "span-took", style: `left:${end.toFixed(3)}%` }, took);
}

function selectSpan(span) {
  for (const row of document.querySelectorAll("#trace-waterfall .span-row")) {
    row.classList.toggle("selected", row.dataset.spanId === span.span_id);
  }
  const pane = $("#span-detail");
  const seq = span.attributes["shop.event.seq"];
  const eventId = span.attributes["cloudevents.event_id"];
  const journal = el("div", { class: "deliveries", id: "span-event" });
  fill(pane,
    el("h2", {}, el("span", { class: "span-service" }, span.service), " ", span.name),
    el("p", { class: "muted" }, `${span.kind} · ${duration((span.end_unix_nano - span.start_unix_nano) / 1e6)} · status ${span.status}`, span.status_message ? ` (${span.status_message})` : ""),
    seq !== undefined || eventId !== undefined
      ? el("p", {}, el("button", { type: "button", class: "small secondary", id: "span-open-event", onclick: () => openSpanEvent(journal, seq, eventId) }, "Open the event"))
      : null,
    journal,
    el("h3", {}, "attributes"), kvTable(span.attributes),
    el("h3", {}, "ids"), kvTable({ span_id: span.span_id, parent_span_id: span.parent_span_id }));
}

// A span's event as the broker's journal has it (by seq, else by id), with its deliveries and
// a way to the Events tab while the viewer still holds it.
async function openSpanEvent(box, seq, eventId) {
  const query = seq !== undefined ? { seq: String(seq) } : null;
  const held = (id) => state.events.find((event) => event.id === id);
  if (query === null) {
    if (held(eventId)) showHeldEvent(held(eventId));
    else fill(box, el("p", { class: "muted" }, `The viewer no longer holds event ${eventId}.`));
    return;
  }
  const { ok, body } = await api(`/api/deliveries?${new URLSearchParams(query)}`);
  if (!ok) {
    fill(box, el("p", { class: "error" }, body?.error || "the journal did not answer"));
    return;
  }
  const event = held(body.id);
  fill(box,
    el("h3", {}, "event"),
    el("p", { class: "span-event", dataset: { id: body.id } }, typeChip(body.type), " ", el("span", { class: "mono" }, body.id)),
    event ? el("p", {}, el("button", { type: "button", class: "small secondary", id: "span-show-event", onclick: () => showHeldEvent(event) }, "Show in the Events tab")) : null,
    el("h3", {}, "deliveries"), deliveriesTable(body));
}

function showHeldEvent(event) {
  selectTab("events");
  selectEvent(event.seq);
}

start();
