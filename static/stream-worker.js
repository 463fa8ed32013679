// tailsse shared stream: a SharedWorker that holds ONE EventSource on /events for every tab of
// this origin, so any number of tabs work over plain HTTP/1.1 (a browser opens at most six
// connections per origin; one EventSource per tab blocks the seventh tab).
//
// Each tab subscribes with the sources it shows (each with its server-side parameters and its
// `tail`). The worker streams the union of them on one multiplexed stream. When the union changes
// it reopens the stream with the composite id it holds, so the sources already streaming resume
// exactly and a new source starts at the tab's `tail`. A tab that joins a source already streaming
// gets the source's recent events from the worker (up to its `tail`), then the live ones. A source
// wanted with other parameters than the stream has, or with more history than the worker keeps,
// is refused ("unshared"): that tab opens an EventSource of its own.
//
// Messages from a tab: {type: "subscribe", sources: [{name, params: [[k, v]], tail}]},
// {type: "unsubscribe"}, {type: "reopen"} (after the tab checked the server when the stream
// closed). To a tab: {type: "event", kind, data, id}, {type: "state", state}, {type: "closed"},
// {type: "unshared"}.

const RECENT_MAX = 1000;        // events kept per source for tabs that join later
const MAX_SOURCES = 16;         // what one /events stream may combine
const MARKERS = ["rotated", "truncated", "reset", "end"];

/** port -> {sources: Set(name)} */
const tabs = new Map();
/** name -> {params: string (canonical), query: [[k, v]], tail: string, recent: [{kind, data, id}]} */
const streamed = new Map();
let eventSource = null;
let lastId = null;
let state = "connecting";
let reopenTimer = 0;

function paramsKey(params) {
  return JSON.stringify([...params].map(([k, v]) => [String(k), String(v)]).sort());
}

function post(port, message) {
  try { port.postMessage(message); } catch { tabs.delete(port); }
}

function broadcast(message, source = null) {
  for (const [port, tab] of tabs) {
    if (source === null || tab.sources.has(source)) post(port, message);
  }
}

function wanted() {
  const names = new Set();
  for (const tab of tabs.values()) for (const name of tab.sources) names.add(name);
  return names;
}

function subscribe(port, sources) {
  const union = wanted();
  for (const { name, params } of sources) {
    const known = streamed.get(name);
    if (known && known.params !== paramsKey(params)) return post(port, { type: "unshared" });
    union.add(name);
  }
  const needsNew = sources.some(({ name }) => !streamed.has(name));
  if (union.size > MAX_SOURCES) return post(port, { type: "unshared" });
  for (const { name, tail } of sources) {
    const known = streamed.get(name);
    if (known && !(tail !== "all" && Number(tail) <= RECENT_MAX)) return post(port, { type: "unshared" });
  }
  tabs.set(port, { sources: new Set(sources.map((s) => s.name)) });
  post(port, { type: "state", state: eventSource && eventSource.readyState === EventSource.OPEN ? "live" : state });
  for (const { name, params, tail } of sources) {
    const known = streamed.get(name);
    if (known) {
      const count = Number(tail);
      for (const item of known.recent.slice(Math.max(0, known.recent.length - count))) post(port, { type: "event", ...item });
    } else {
      streamed.set(name, { params: paramsKey(params), query: params, tail, recent: [] });
    }
  }
  if (needsNew) scheduleReopen();
}

function unsubscribe(port) {
  tabs.delete(port);
  const union = wanted();
  let changed = false;
  for (const name of [...streamed.keys()]) {
    if (!union.has(name)) {
      streamed.delete(name);
      lastId = withoutPart(lastId, name);
      changed = true;
    }
  }
  if (changed) scheduleReopen();
}

/** The composite id without `name`'s part: a source streamed again later starts at its tail. */
function withoutPart(composite, name) {
  if (typeof composite !== "string" || !composite.startsWith("m1")) return composite;
  const parts = composite.slice(3).split(",").filter((item) => item && !item.startsWith(`${name}=`));
  return parts.length ? `m1,${parts.join(",")}` : null;
}

function scheduleReopen() {
  clearTimeout(reopenTimer);
  // Tabs opened together (a restored session) cause one reopen, not one each.
  reopenTimer = setTimeout(reopen, 30);
}

function query() {
  const q = new URLSearchParams();
  for (const [name, source] of streamed) {
    q.append("source", name);
    q.append(`${name}.tail`, source.tail);
    for (const [key, value] of source.query) q.append(`${name}.${key}`, value);
  }
  if (lastId) q.set("lastEventId", lastId);
  return q.toString();
}

function reopen() {
  reopenTimer = 0;
  if (eventSource) eventSource.close();
  eventSource = null;
  if (streamed.size === 0) return;
  state = lastId === null ? "connecting" : "reconnecting";
  broadcast({ type: "state", state });
  const source = new EventSource(`events?${query()}`);
  source.onopen = () => {
    if (source !== eventSource) return;
    state = "live";
    broadcast({ type: "state", state });
  };
  source.onerror = () => {
    if (source !== eventSource) return;
    if (source.readyState === EventSource.CONNECTING) {
      state = "reconnecting";
      broadcast({ type: "state", state });
      return;
    }
    // Closed for good (a non-200 answer): each tab checks the server (sources, login), then asks
    // for a reopen.
    source.close();
    eventSource = null;
    state = "reconnecting";
    broadcast({ type: "closed" });
  };
  source.onmessage = (event) => dispatch("line", event);
  for (const kind of MARKERS) source.addEventListener(kind, (event) => dispatch(kind, event));
  eventSource = source;
}

function dispatch(kind, event) {
  if (event.target !== eventSource) return;
  if (event.lastEventId) lastId = event.lastEventId;
  let data;
  try {
    data = JSON.parse(event.data);
  } catch {
    data = null;
  }
  if (!data || typeof data !== "object") data = { text: String(event.data) };
  const name = typeof data.source === "string" ? data.source : "";
  const item = { kind, data, id: event.lastEventId || null };
  const source = streamed.get(name);
  if (source) {
    source.recent.push(item);
    if (source.recent.length > RECENT_MAX * 2) source.recent.splice(0, source.recent.length - RECENT_MAX);
  }
  broadcast({ type: "event", ...item }, name);
}

onconnect = (event) => {
  const port = event.ports[0];
  port.onmessage = ({ data }) => {
    if (!data || typeof data !== "object") return;
    if (data.type === "subscribe" && Array.isArray(data.sources)) subscribe(port, data.sources);
    else if (data.type === "unsubscribe") unsubscribe(port);
    else if (data.type === "reopen" && !eventSource && !reopenTimer) scheduleReopen();
  };
  port.start();
};
