// tailsse viewer: lists the sources, follows one of them over Server-Sent Events and shows its
// lines live. One ES module: nothing here is put on the global object.
//
// Log text is only ever inserted as text (Text nodes / textContent), never parsed as HTML.

const CONFIG = Object.freeze({
  maxLines: 5000,          // rows kept in the page; the oldest are dropped beyond this
  defaultTail: 100,        // existing lines asked for when a source is opened
  followSlackPx: 24,       // this close to the bottom still counts as "at the bottom"
  retryInitialMs: 1000,    // first delay of the page's own reconnect backoff
  retryMaxMs: 30000,       // longest delay of the backoff
  markerKinds: ["rotated", "truncated", "reset"],
});

const MARKER_LABELS = Object.freeze({
  rotated: "File rotated",
  truncated: "File truncated",
  reset: "Stream reset",
});

const STATUS_LABELS = Object.freeze({
  idle: "Idle",
  connecting: "Connecting",
  live: "Live",
  reconnecting: "Reconnecting",
  stopped: "Stopped",
});

// ---------------------------------------------------------------------------------------------
// Small helpers

function byId(id) {
  const element = document.getElementById(id);
  if (!element) throw new Error(`tailsse: missing element #${id}`);
  return element;
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

const CONTROL_CHARS = /[\u0000-\u0008\u000B-\u001F\u007F]/;
const CONTROL_SPLIT = /([\u0000-\u0008\u000B-\u001F\u007F])/;

/** Caret notation for a control character, as `cat -v` shows it: ^M for CR, ^[ for ESC, ^? for DEL. */
function caretNotation(c) {
  const code = c.charCodeAt(0);
  return code === 0x7f ? "^?" : `^${String.fromCharCode(code + 0x40)}`;
}

/**
 * Appends log text to `parent` as text only. Control characters other than tab are made visible
 * in caret notation, in marked spans so they cannot be mistaken for the same characters typed out.
 */
function appendLogText(parent, text) {
  if (!CONTROL_CHARS.test(text)) {
    parent.append(text);
    return;
  }
  text.split(CONTROL_SPLIT).forEach((part, index) => {
    if (index % 2 === 0) {
      if (part) parent.append(part);
    } else {
      const mark = element("span", "ctrl", caretNotation(part));
      mark.title = `U+${part.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")}`;
      parent.append(mark);
    }
  });
}

function formatCount(n) {
  return n.toLocaleString("en-US");
}

function clockTime(date = new Date()) {
  return date.toLocaleTimeString([], { hour12: false });
}

/** Exponential backoff with jitter: about 1 s, 2 s, 4 s … up to the maximum. */
function backoffDelay(attempt) {
  const base = Math.min(CONFIG.retryMaxMs, CONFIG.retryInitialMs * 2 ** attempt);
  return Math.round(base * (0.75 + Math.random() * 0.5));
}

function sourceURL(name, params) {
  // Relative, so the page also works when hosted under a sub-path behind a proxy.
  const query = new URLSearchParams(params).toString();
  return `sources/${encodeURIComponent(name)}${query ? `?${query}` : ""}`;
}

async function fetchSources() {
  const response = await fetch("sources", { headers: { Accept: "application/json" }, cache: "no-store" });
  if (!response.ok) throw new Error(`GET /sources answered ${response.status}`);
  const list = await response.json();
  if (!Array.isArray(list)) throw new Error("GET /sources did not answer a list");
  return list.filter((s) => s && typeof s.name === "string");
}

// ---------------------------------------------------------------------------------------------
// UrlState: the chosen source lives in the hash (#source=NAME), so a link reopens it.
// `?source=NAME` is accepted too; `tail=N` may sit beside it in either place.

const UrlState = {
  params() {
    const merged = new URLSearchParams(window.location.search);
    for (const [key, value] of new URLSearchParams(window.location.hash.slice(1))) merged.set(key, value);
    return merged;
  },

  source() {
    return this.params().get("source") || null;
  },

  tail() {
    const raw = this.params().get("tail");
    return raw && /^(\d{1,9}|all)$/.test(raw) ? raw : String(CONFIG.defaultTail);
  },

  /** Puts `name` in the hash: a new history entry, or in place when `replace` (no hashchange). */
  setSource(name, { replace = false } = {}) {
    const hash = new URLSearchParams(window.location.hash.slice(1));
    hash.set("source", name);
    const next = `#${hash.toString()}`;
    if (window.location.hash === next) return;
    if (replace) window.history.replaceState(window.history.state, "", next);
    else window.location.hash = next;
  },
};

// ---------------------------------------------------------------------------------------------
// LogView: the scrolling list of rows. Appends in batches (one per animation frame), keeps at
// most CONFIG.maxLines rows, follows the bottom unless the user scrolled up.

class LogView {
  #container;
  #jumpButton;
  #countLabel;
  #noteLabel;
  #pending = document.createDocumentFragment();
  #pendingRows = 0;
  #rows = 0;
  #dropped = 0;
  #unseen = 0;
  #openRow = null;       // the row a long line's next piece is appended to
  #following = true;
  #flushFrame = 0;
  #flushTimer = 0;

  constructor({ container, jumpButton, countLabel, noteLabel }) {
    this.#container = container;
    this.#jumpButton = jumpButton;
    this.#countLabel = countLabel;
    this.#noteLabel = noteLabel;
    container.addEventListener("scroll", () => this.#onScroll(), { passive: true });
    jumpButton.addEventListener("click", () => this.jumpToLive());
    new ResizeObserver(() => { if (this.#following) this.#scrollToBottom(); }).observe(container);
    this.#renderFooter();
  }

  /** A line, or one piece of a long line when `continues` says another piece follows. */
  appendLine(text, continues) {
    const row = this.#openRow ?? this.#newRow("row row-line");
    appendLogText(row, text);
    this.#openRow = continues ? row : null;
    this.#scheduleFlush();
  }

  /** A separator row for something that is not a line: rotated, truncated, reset. */
  appendMarker(kind, message) {
    this.#openRow = null;
    const row = this.#newRow(`row row-marker marker-${kind}`);
    const now = new Date();
    const time = element("time", "marker-time", clockTime(now));
    time.dateTime = now.toISOString();
    row.append(
      element("span", "marker-label", MARKER_LABELS[kind] ?? kind),
      element("span", "marker-text", message),
      time,
    );
    this.#scheduleFlush();
  }

  clear() {
    this.#container.replaceChildren();
    this.#pending = document.createDocumentFragment();
    this.#rows = this.#pendingRows = this.#dropped = this.#unseen = 0;
    this.#openRow = null;
    this.jumpToLive();
  }

  jumpToLive() {
    this.#following = true;
    this.#unseen = 0;
    this.#scrollToBottom();
    this.#renderJump();
  }

  #newRow(className) {
    const row = element("div", className);
    this.#pending.append(row);
    this.#pendingRows += 1;
    if (this.#pendingRows > CONFIG.maxLines) this.#dropPendingHead();
    return row;
  }

  // While the tab is hidden no frame is drawn: keep the pending batch bounded as well.
  #dropPendingHead() {
    const head = this.#pending.firstChild;
    if (head === this.#openRow) this.#openRow = null;
    head.remove();
    this.#pendingRows -= 1;
    this.#dropped += 1;
  }

  #scheduleFlush() {
    if (this.#flushFrame) return;
    this.#flushFrame = requestAnimationFrame(() => this.#flush());
    // Hidden tabs get no animation frames; a timer still drains the batch now and then.
    this.#flushTimer = setTimeout(() => this.#flush(), 500);
  }

  #flush() {
    cancelAnimationFrame(this.#flushFrame);
    clearTimeout(this.#flushTimer);
    this.#flushFrame = this.#flushTimer = 0;
    if (this.#pendingRows > 0) {
      if (!this.#following) this.#unseen += this.#pendingRows;
      this.#rows += this.#pendingRows;
      this.#pendingRows = 0;
      this.#container.append(this.#pending);
    }
    this.#trim();
    if (this.#following) this.#scrollToBottom();
    this.#renderJump();
    this.#renderFooter();
  }

  #trim() {
    const excess = this.#rows - CONFIG.maxLines;
    if (excess <= 0) return;
    const heightBefore = this.#container.scrollHeight;
    const range = document.createRange();
    range.setStartBefore(this.#container.firstChild);
    range.setEndAfter(this.#container.children[excess - 1]);
    if (this.#openRow && range.intersectsNode(this.#openRow)) this.#openRow = null;
    range.deleteContents();
    this.#rows -= excess;
    this.#dropped += excess;
    // Keep what the user is reading in place when older rows vanish above it.
    if (!this.#following) this.#container.scrollTop -= heightBefore - this.#container.scrollHeight;
  }

  #onScroll() {
    const c = this.#container;
    const atBottom = c.scrollHeight - c.scrollTop - c.clientHeight <= CONFIG.followSlackPx;
    if (atBottom === this.#following) return;
    this.#following = atBottom;
    if (atBottom) this.#unseen = 0;
    this.#renderJump();
  }

  #scrollToBottom() {
    this.#container.scrollTop = this.#container.scrollHeight;
  }

  #renderJump() {
    this.#jumpButton.hidden = this.#following;
    this.#jumpButton.textContent = this.#unseen > 0
      ? `Jump to live (${formatCount(this.#unseen)} new)`
      : "Jump to live";
  }

  #renderFooter() {
    const rows = this.#rows;
    this.#countLabel.textContent = `${formatCount(rows)} ${rows === 1 ? "line" : "lines"}`;
    this.#noteLabel.textContent = this.#dropped > 0
      ? `${formatCount(this.#dropped)} older lines dropped · keeps the newest ${formatCount(CONFIG.maxLines)}`
      : `keeps the newest ${formatCount(CONFIG.maxLines)}`;
  }
}

// ---------------------------------------------------------------------------------------------
// SourceStream: one source's EventSource. Tracks the last event id; lets the browser reconnect
// by itself after a dropped connection, and reconnects on its own with backoff (resuming with
// ?lastEventId=) when the browser gives up for good after a non-200 answer.

class SourceStream {
  #name;
  #tail;
  #handlers;
  #eventSource = null;
  #lastId = null;
  #attempt = 0;
  #retryTimer = 0;
  #running = false;
  #onlineListener = () => this.#onOnline();

  /**
   * @param {string} name  the source's name
   * @param {string} tail  how many existing lines to ask for first
   * @param {{onLine, onMarker, onState, stillExists}} handlers
   */
  constructor(name, tail, handlers) {
    this.#name = name;
    this.#tail = tail;
    this.#handlers = handlers;
  }

  get name() { return this.#name; }
  get running() { return this.#running; }

  start() {
    if (this.#running) return;
    this.#running = true;
    window.addEventListener("online", this.#onlineListener);
    this.#open(this.#lastId === null ? "connecting" : "reconnecting");
  }

  stop(detail = "") {
    this.#running = false;
    window.removeEventListener("online", this.#onlineListener);
    this.#cancelRetry();
    this.#close();
    this.#handlers.onState("stopped", detail);
  }

  #open(state) {
    this.#handlers.onState(state, "");
    const params = { tail: this.#tail };
    if (this.#lastId !== null) params.lastEventId = this.#lastId;
    const eventSource = new EventSource(sourceURL(this.#name, params));
    eventSource.onopen = () => this.#onOpen(eventSource);
    eventSource.onerror = () => this.#onError(eventSource);
    eventSource.onmessage = (event) => this.#onLine(event);
    for (const kind of CONFIG.markerKinds) {
      eventSource.addEventListener(kind, (event) => this.#onMarker(kind, event));
    }
    this.#eventSource = eventSource;
  }

  #close() {
    if (!this.#eventSource) return;
    this.#eventSource.close();
    this.#eventSource = null;
  }

  #onOpen(eventSource) {
    if (eventSource !== this.#eventSource) return;
    this.#attempt = 0;
    this.#handlers.onState("live", "");
  }

  #onError(eventSource) {
    if (eventSource !== this.#eventSource) return;
    if (eventSource.readyState === EventSource.CONNECTING) {
      // The browser reconnects by itself and sends Last-Event-ID.
      this.#handlers.onState("reconnecting", "");
      return;
    }
    // CLOSED: the browser gave up for good (a non-200 answer, e.g. a proxy's 502).
    this.#close();
    this.#scheduleRetry();
  }

  #scheduleRetry() {
    const delay = backoffDelay(this.#attempt);
    this.#attempt += 1;
    this.#handlers.onState("reconnecting", `retry in ${Math.max(1, Math.round(delay / 1000))} s`);
    this.#retryTimer = setTimeout(() => this.#retry(), delay);
  }

  async #retry() {
    this.#retryTimer = 0;
    if (!this.#running) return;
    // A source the server no longer offers would answer 404 forever: stop instead.
    if ((await this.#handlers.stillExists(this.#name)) === false) {
      this.stop("the server no longer offers this source");
      return;
    }
    if (this.#running && !this.#eventSource) this.#open("reconnecting");
  }

  #cancelRetry() {
    clearTimeout(this.#retryTimer);
    this.#retryTimer = 0;
  }

  #onOnline() {
    if (!this.#running || !this.#retryTimer) return;
    this.#cancelRetry();
    this.#attempt = 0;
    this.#retry();
  }

  #remember(event) {
    if (event.lastEventId) this.#lastId = event.lastEventId;
  }

  #parse(event) {
    try {
      const data = JSON.parse(event.data);
      return data && typeof data === "object" ? data : null;
    } catch {
      return null;
    }
  }

  #onLine(event) {
    if (event.target !== this.#eventSource) return;
    this.#remember(event);
    const data = this.#parse(event);
    if (data && typeof data.text === "string") this.#handlers.onLine(data.text, data.continues === true);
    else this.#handlers.onLine(String(event.data), false);
  }

  #onMarker(kind, event) {
    if (event.target !== this.#eventSource) return;
    this.#remember(event);
    const data = this.#parse(event) ?? {};
    const message = kind === "reset" ? data.reason : data.text;
    this.#handlers.onMarker(kind, typeof message === "string" ? message : "");
  }
}

// ---------------------------------------------------------------------------------------------
// StatusView: the connection status pill (role=status, aria-live=polite).

class StatusView {
  #root;
  #text;
  #detail;

  constructor({ root, text, detail }) {
    this.#root = root;
    this.#text = text;
    this.#detail = detail;
  }

  show(state, detail = "") {
    const label = STATUS_LABELS[state] ?? state;
    if (this.#root.dataset.state === state && this.#detail.textContent === detail) return;
    this.#root.dataset.state = state;
    this.#text.textContent = label;
    this.#detail.textContent = detail;
    this.#root.title = detail;
  }
}

// ---------------------------------------------------------------------------------------------
// SourcePicker: the <select> in the bar and the list shown while no source is open.

class SourcePicker {
  #select;
  #detail;
  #empty;
  #emptyTitle;
  #emptyText;
  #emptyList;
  #sources = [];

  constructor({ select, detail, empty, emptyTitle, emptyText, emptyList }, onChoose) {
    this.#select = select;
    this.#detail = detail;
    this.#empty = empty;
    this.#emptyTitle = emptyTitle;
    this.#emptyText = emptyText;
    this.#emptyList = emptyList;
    select.addEventListener("change", () => { if (select.value) onChoose(select.value); });
    this.#emptyList.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-source]");
      if (button) onChoose(button.dataset.source);
    });
  }

  get sources() { return this.#sources; }

  find(name) {
    return this.#sources.find((s) => s.name === name) ?? null;
  }

  setSources(sources) {
    this.#sources = sources;
    const options = [element("option", "", sources.length ? "Choose a source…" : "No sources")];
    options[0].value = "";
    for (const source of sources) {
      const option = element("option", "", source.name);
      option.value = source.name;
      options.push(option);
    }
    this.#select.replaceChildren(...options);
    this.#select.disabled = sources.length === 0;
    this.#emptyList.replaceChildren(...sources.map((s) => this.#sourceButton(s)));
  }

  /** Shows `name` as the chosen source (or none), with its kind and path beside the picker. */
  showChosen(name) {
    this.#select.value = name && this.find(name) ? name : "";
    const source = name ? this.find(name) : null;
    this.#detail.textContent = source ? describeSource(source) : "";
    this.#detail.title = source?.path ?? "";
  }

  showEmpty(title, text) {
    this.#emptyTitle.textContent = title;
    this.#emptyText.textContent = text;
    this.#emptyList.hidden = this.#sources.length === 0;
    this.#empty.hidden = false;
  }

  hideEmpty() {
    this.#empty.hidden = true;
  }

  #sourceButton(source) {
    const button = element("button", "source-choice");
    button.type = "button";
    button.dataset.source = source.name;
    button.append(
      element("span", "source-choice-name", source.name),
      element("span", "source-choice-detail", describeSource(source)),
    );
    const item = element("li");
    item.append(button);
    return item;
  }
}

function describeSource(source) {
  const kind = source.kind === "journal" ? "journal" : "file";
  const where = typeof source.path === "string" ? ` · ${source.path}` : "";
  const waiting = source.following === false ? " · not followed yet" : "";
  return `${kind}${where}${waiting}`;
}

// ---------------------------------------------------------------------------------------------
// Viewer: ties the pieces together.

class Viewer {
  #log;
  #status;
  #picker;
  #toggleButton;
  #clearButton;
  #stream = null;
  #listAttempt = 0;

  constructor() {
    this.#log = new LogView({
      container: byId("log"),
      jumpButton: byId("jump-button"),
      countLabel: byId("line-count"),
      noteLabel: byId("foot-note"),
    });
    this.#status = new StatusView({ root: byId("status"), text: byId("status-text"), detail: byId("status-detail") });
    this.#picker = new SourcePicker({
      select: byId("source-select"),
      detail: byId("source-detail"),
      empty: byId("empty"),
      emptyTitle: byId("empty-title"),
      emptyText: byId("empty-text"),
      emptyList: byId("empty-list"),
    }, (name) => UrlState.setSource(name));
    this.#toggleButton = byId("toggle-button");
    this.#toggleButton.addEventListener("click", () => this.#toggle());
    this.#clearButton = byId("clear-button");
    this.#clearButton.addEventListener("click", () => this.#log.clear());
    window.addEventListener("hashchange", () => this.#openFromLocation());
  }

  async start() {
    this.#status.show("connecting", "listing sources");
    try {
      this.#picker.setSources(await fetchSources());
      this.#listAttempt = 0;
    } catch (error) {
      const delay = backoffDelay(this.#listAttempt++);
      this.#status.show("reconnecting", `cannot list sources; retry in ${Math.round(delay / 1000)} s`);
      this.#picker.showEmpty("Cannot reach tailsse", String(error.message ?? error));
      setTimeout(() => this.start(), delay);
      return;
    }
    this.#openFromLocation();
  }

  #openFromLocation() {
    const sources = this.#picker.sources;
    let name = UrlState.source();
    if (!name && sources.length === 1) {
      name = sources[0].name;
      UrlState.setSource(name, { replace: true });
    }
    if (!name) {
      this.#close();
      this.#picker.showChosen(null);
      this.#status.show("idle", sources.length ? "no source chosen" : "no sources configured");
      this.#picker.showEmpty(
        sources.length ? "Choose a source" : "No sources",
        sources.length ? "Pick a log to follow." : "This tailsse serves no sources.",
      );
      return;
    }
    if (!this.#picker.find(name)) {
      this.#close();
      this.#picker.showChosen(null);
      this.#status.show("stopped", "unknown source");
      this.#picker.showEmpty("Unknown source", `The server offers no source named “${name}”.`);
      return;
    }
    this.#open(name);
  }

  #open(name) {
    if (this.#stream?.name === name) return;
    this.#close();
    this.#picker.showChosen(name);
    this.#picker.hideEmpty();
    this.#log.clear();
    document.title = `${name} · tailsse`;
    this.#stream = new SourceStream(name, UrlState.tail(), {
      onLine: (text, continues) => this.#log.appendLine(text, continues),
      onMarker: (kind, message) => this.#log.appendMarker(kind, message),
      onState: (state, detail) => this.#onState(state, detail),
      stillExists: (sourceName) => this.#stillExists(sourceName),
    });
    this.#stream.start();
  }

  #close() {
    if (!this.#stream) return;
    const stream = this.#stream;
    this.#stream = null;
    stream.stop();
    document.title = "tailsse";
    this.#toggleButton.disabled = true;
    this.#clearButton.disabled = true;
  }

  #toggle() {
    const stream = this.#stream;
    if (!stream) return;
    if (stream.running) {
      stream.stop("paused; Resume picks up where it left off");
    } else {
      stream.start();
    }
  }

  #onState(state, detail) {
    if (!this.#stream) return;
    this.#status.show(state, detail);
    const running = state !== "stopped";
    this.#toggleButton.disabled = false;
    this.#clearButton.disabled = false;
    this.#toggleButton.textContent = running ? "Stop" : "Resume";
  }

  /** true / false when the server answered, undefined when it could not be asked. */
  async #stillExists(name) {
    try {
      const sources = await fetchSources();
      this.#picker.setSources(sources);
      this.#picker.showChosen(this.#stream?.name ?? null);
      return sources.some((s) => s.name === name);
    } catch {
      return undefined;
    }
  }
}

new Viewer().start();
