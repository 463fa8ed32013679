// tailsse viewer: follows one or several sources on one multiplexed Server-Sent Events stream
// (GET /events?source=A&source=B) and shows their lines live. One ES module: nothing here is put
// on the global object except `window.tailsse`, a small read-only view for tests and debugging.
//
// Log text is only ever inserted as text (Text nodes / textContent), never parsed as HTML.

const CONFIG = Object.freeze({
  defaultMaxLines: 10000,  // rows kept in the page; the oldest are dropped beyond this
  minMaxLines: 100,
  maxMaxLines: 1000000,
  defaultTail: 100,        // existing lines asked for when a view is opened
  rowsPerFrame: 1500,      // rows made per animation frame; more wait in the queue (bounded by the cap)
  followSlackPx: 24,       // this close to the bottom still counts as "at the bottom"
  foldChars: 4000,         // a longer line is shown folded: its first foldShownChars and its size
  foldShownChars: 1000,
  userScrollMs: 1000,      // a scroll this soon after the user's wheel, touch, key or pointer is theirs
  retryInitialMs: 1000,    // first delay of the page's own reconnect backoff
  retryMaxMs: 30000,       // longest delay of the backoff
  markerKinds: ["rotated", "truncated", "reset", "end"],
  earlierBatch: 500,       // lines asked for per "load earlier" (GET /sources/NAME/lines?before=)
  contextLines: 20,        // lines shown before and after a line opened in context
  searchLimit: 500,        // matches asked for per "Search the file"
  journalFilters: ["host", "unit", "priority", "identifier"],
});

const MARKER_LABELS = Object.freeze({
  rotated: "File rotated",
  truncated: "File truncated",
  reset: "Stream reset",
  end: "Source ended",
});

const STATUS_LABELS = Object.freeze({
  idle: "Idle",
  connecting: "Connecting",
  live: "Live",
  reconnecting: "Reconnecting",
  stopped: "Stopped",
});

const PRIORITY_NAMES = Object.freeze(["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"]);

// ---------------------------------------------------------------------------------------------
// Small helpers

function byId(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error(`tailsse: missing element #${id}`);
  return node;
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function formatCount(n) {
  return n.toLocaleString("en-US");
}

/** A size in bytes as people read it: 980 B, 97.7 kB, 1.2 MB. */
function formatBytes(n) {
  if (n < 1000) return `${n} B`;
  if (n < 1000 * 1000) return `${(n / 1000).toFixed(1)} kB`;
  return `${(n / 1000 / 1000).toFixed(1)} MB`;
}

/** The first `limit` characters of styled segments. */
function clipSegments(segments, limit) {
  const clipped = [];
  let left = limit;
  for (const segment of segments) {
    if (left <= 0) break;
    clipped.push(segment.text.length <= left ? segment : { text: segment.text.slice(0, left), style: segment.style });
    left -= segment.text.length;
  }
  return clipped;
}

/** The page's filter (a substring, or `/regex/flags`) as `grep=` parameters for the server
 * (PCRE2), or null when there is none. */
function grepParameters(filterText) {
  if (!filterText) return null;
  const literal = /^\/(.+)\/([a-z]*)$/s.exec(filterText);
  if (literal) return { grep: literal[1], "grep-case": literal[2].includes("i") ? "insensitive" : "sensitive" };
  return { grep: filterText.replace(/[\\^$.|?*+()[\]{}]/g, "\\$&"), "grep-case": "insensitive" };
}

/** A line's own id from the id it came with: the part of its source in a composite id, and
 * within that, for a glob source's line, the part of its file (`m1,app=m1%2Cx.log%3D…`). */
function ownID(id, source, file) {
  if (typeof id !== "string") return null;
  const part = id.startsWith("m1,") ? ownPart(id, source) : id;
  return file && part ? ownPart(part, file) : part;
}

/** A source's own id inside a composite id (`m1,NAME=ID,...`, `%XX` escapes), or null. */
function ownPart(composite, source) {
  if (typeof composite !== "string" || !composite.startsWith("m1,")) return null;
  for (const item of composite.slice(3).split(",")) {
    const equals = item.indexOf("=");
    if (equals > 0 && item.slice(0, equals) === source) {
      try { return decodeURIComponent(item.slice(equals + 1)); } catch { return null; }
    }
  }
  return null;
}

function pad(n, width = 2) {
  return String(n).padStart(width, "0");
}

/** HH:MM:SS.mmm in local time. */
function clockTime(date) {
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`;
}

/** Exponential backoff with jitter: about 1 s, 2 s, 4 s … up to the maximum. */
function backoffDelay(attempt) {
  const base = Math.min(CONFIG.retryMaxMs, CONFIG.retryInitialMs * 2 ** attempt);
  return Math.round(base * (0.75 + Math.random() * 0.5));
}

/** The server answered 401: the page must log in before it can list or stream sources. */
class LoginRequired extends Error {
  constructor() { super("log in to continue"); }
}

async function fetchSources() {
  const response = await fetch("sources", { headers: { Accept: "application/json" }, cache: "no-store" });
  if (response.status === 401) throw new LoginRequired();
  if (!response.ok) throw new Error(`GET /sources answered ${response.status}`);
  const list = await response.json();
  if (!Array.isArray(list)) throw new Error("GET /sources did not answer a list");
  return list.filter((s) => s && typeof s.name === "string");
}

// ---------------------------------------------------------------------------------------------
// ANSI SGR colours: a line is split into segments of text, each with its style. Other escape
// sequences (cursor movement, erase) are dropped; other control characters are shown in caret
// notation. Nothing here produces markup: styles become class names or CSSOM properties.

const ESCAPE_SEQUENCE = /\u001b\[([0-?]*)[ -\/]*([@-~])|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)?|\u001b[@-Z\\-_]?/g;
const CONTROL_SPLIT = /([\u0000-\u0008\u000B-\u001A\u001C-\u001F\u007F])/;
const HAS_SPECIAL = /[\u0000-\u0008\u000B-\u001F\u007F]/;

function xterm256(n) {
  if (n < 16) return null;
  if (n >= 232) {
    const v = 8 + (n - 232) * 10;
    return `rgb(${v},${v},${v})`;
  }
  const i = n - 16;
  const level = (c) => (c === 0 ? 0 : 55 + c * 40);
  return `rgb(${level(Math.floor(i / 36))},${level(Math.floor(i / 6) % 6)},${level(i % 6)})`;
}

class SgrState {
  bold = false; dim = false; italic = false; underline = false; inverse = false;
  fg = null; bg = null;  // a number 0..15 (palette class) or a CSS colour string

  apply(params) {
    const codes = params === "" ? [0] : params.split(/[;:]/).map((p) => (p === "" ? 0 : Number(p)));
    for (let i = 0; i < codes.length; i += 1) {
      const code = codes[i];
      if (code === 0) Object.assign(this, new SgrState());
      else if (code === 1) this.bold = true;
      else if (code === 2) this.dim = true;
      else if (code === 3) this.italic = true;
      else if (code === 4) this.underline = true;
      else if (code === 7) this.inverse = true;
      else if (code === 22) this.bold = this.dim = false;
      else if (code === 23) this.italic = false;
      else if (code === 24) this.underline = false;
      else if (code === 27) this.inverse = false;
      else if (code >= 30 && code <= 37) this.fg = code - 30;
      else if (code >= 90 && code <= 97) this.fg = code - 90 + 8;
      else if (code === 39) this.fg = null;
      else if (code >= 40 && code <= 47) this.bg = code - 40;
      else if (code >= 100 && code <= 107) this.bg = code - 100 + 8;
      else if (code === 49) this.bg = null;
      else if (code === 38 || code === 48) {
        let colour = null;
        if (codes[i + 1] === 5 && i + 2 < codes.length) {
          const n = codes[i + 2];
          colour = n < 16 ? n : xterm256(n);
          i += 2;
        } else if (codes[i + 1] === 2 && i + 4 < codes.length) {
          const [r, g, b] = codes.slice(i + 2, i + 5).map((v) => Math.max(0, Math.min(255, v | 0)));
          colour = `rgb(${r},${g},${b})`;
          i += 4;
        } else {
          break;
        }
        if (code === 38) this.fg = colour; else this.bg = colour;
      }
    }
  }

  isPlain() {
    return !this.bold && !this.dim && !this.italic && !this.underline && !this.inverse && this.fg === null && this.bg === null;
  }

  snapshot() {
    return this.isPlain() ? null : {
      bold: this.bold, dim: this.dim, italic: this.italic, underline: this.underline,
      fg: this.inverse ? (this.bg ?? "inverse-fg") : this.fg,
      bg: this.inverse ? (this.fg ?? "inverse-bg") : this.bg,
    };
  }
}

/** Splits a line into `{text, style}` segments; `style` is null for plain text. */
function parseAnsi(text) {
  if (!text.includes("\u001b")) return [{ text, style: null }];
  const segments = [];
  const state = new SgrState();
  let last = 0;
  ESCAPE_SEQUENCE.lastIndex = 0;
  for (let match = ESCAPE_SEQUENCE.exec(text); match; match = ESCAPE_SEQUENCE.exec(text)) {
    if (match.index > last) segments.push({ text: text.slice(last, match.index), style: state.snapshot() });
    if (match[2] === "m") state.apply(match[1]);
    last = ESCAPE_SEQUENCE.lastIndex;
  }
  if (last < text.length) segments.push({ text: text.slice(last), style: state.snapshot() });
  return segments;
}

function styledSpan(style) {
  const span = element("span", "sgr");
  const classes = [];
  if (style.bold) classes.push("sgr-bold");
  if (style.dim) classes.push("sgr-dim");
  if (style.italic) classes.push("sgr-italic");
  if (style.underline) classes.push("sgr-underline");
  for (const [which, value] of [["fg", style.fg], ["bg", style.bg]]) {
    if (value === null || value === undefined) continue;
    if (typeof value === "number") classes.push(`sgr-${which}-${value}`);
    else if (value === "inverse-fg" || value === "inverse-bg") classes.push(`sgr-${value}`);
    else if (which === "fg") span.style.color = value;  // CSSOM, allowed by the CSP
    else span.style.backgroundColor = value;
  }
  span.classList.add(...classes);
  return span;
}

/** Caret notation for a control character, as `cat -v` shows it: ^M for CR, ^? for DEL. */
function caretNotation(c) {
  const code = c.charCodeAt(0);
  return code === 0x7f ? "^?" : `^${String.fromCharCode(code + 0x40)}`;
}

/** Appends text as Text nodes, control characters (other than tab) as marked caret notation. */
function appendText(parent, text) {
  if (!HAS_SPECIAL.test(text)) {
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

/**
 * Renders segments into `parent`, wrapping the character ranges `marks` ([start, end) pairs over
 * the segments' joined text, sorted, not overlapping) in <mark>.
 */
function renderSegments(parent, segments, marks) {
  parent.replaceChildren();
  let offset = 0;
  let m = 0;
  for (const segment of segments) {
    const target = segment.style ? styledSpan(segment.style) : parent;
    const end = offset + segment.text.length;
    let at = offset;
    while (at < end) {
      while (m < marks.length && marks[m][1] <= at) m += 1;
      const mark = marks[m];
      if (!mark || mark[0] >= end) {
        appendText(target, segment.text.slice(at - offset));
        at = end;
      } else if (mark[0] > at) {
        appendText(target, segment.text.slice(at - offset, mark[0] - offset));
        at = mark[0];
      } else {
        const stop = Math.min(mark[1], end);
        const highlight = element("mark", "hit");
        appendText(highlight, segment.text.slice(at - offset, stop - offset));
        target.append(highlight);
        at = stop;
      }
    }
    if (target !== parent) parent.append(target);
    offset = end;
  }
}

// ---------------------------------------------------------------------------------------------
// Structured lines: a JSON object or logfmt (`key=value key="quoted value"`) read as fields, for
// the fields view. `null` for any other line.

const LOGFMT_PAIR = /([A-Za-z_][\w.\-\/@]*)=("(?:[^"\\]|\\.)*"|[^\s"]*)/y;
const LEVEL_KEYS = new Set(["level", "lvl", "severity", "log.level", "loglevel", "priority"]);
const LEVEL_PRIORITIES = Object.freeze({
  emerg: 0, emergency: 0, panic: 0, alert: 1, crit: 2, critical: 2, fatal: 2, err: 3, error: 3,
  warn: 4, warning: 4, notice: 5, info: 6, information: 6, debug: 7, trace: 7,
});

function structuredFields(text) {
  if (text.length > 65536) return null;
  if (text.startsWith("{")) {
    try {
      const value = JSON.parse(text);
      if (value === null || typeof value !== "object" || Array.isArray(value)) return null;
      return Object.entries(value).map(([key, v]) => [key, typeof v === "string" ? v : JSON.stringify(v)]);
    } catch {
      return null;
    }
  }
  const fields = [];
  let at = 0;
  while (at < text.length) {
    while (text[at] === " ") at += 1;
    if (at >= text.length) break;
    LOGFMT_PAIR.lastIndex = at;
    const match = LOGFMT_PAIR.exec(text);
    if (!match || (match.index + match[0].length < text.length && text[match.index + match[0].length] !== " ")) return null;
    const raw = match[2];
    fields.push([match[1], raw.startsWith('"') ? raw.slice(1, -1).replace(/\\(.)/g, "$1") : raw]);
    at = match.index + match[0].length;
  }
  return fields.length >= 2 ? fields : null;
}

/** The journal priority a structured line's level field names, or `null`. */
function levelPriority(fields) {
  for (const [key, value] of fields) {
    if (!LEVEL_KEYS.has(key.toLowerCase())) continue;
    const priority = LEVEL_PRIORITIES[value.toLowerCase()];
    if (priority !== undefined) return priority;
  }
  return null;
}

function renderFields(parent, fields) {
  parent.replaceChildren();
  fields.forEach(([key, value], index) => {
    if (index > 0) parent.append(" ");
    const field = element("span", "field");
    field.append(element("span", "field-key", key), "=", element("span", "field-value", value));
    parent.append(field);
  });
}

// ---------------------------------------------------------------------------------------------
// Filter: a substring (case-insensitive) or /regex/flags. `test` answers null for a line that does
// not match, else the ranges to highlight.

class Filter {
  source = "";
  error = "";
  #regex = null;
  #needle = "";

  constructor(source = "") {
    this.source = source;
    const literal = /^\/(.+)\/([a-z]*)$/s.exec(source);
    if (literal) {
      try {
        const flags = literal[2].replace(/[gy]/g, "");
        this.#regex = new RegExp(literal[1], `${flags}g`);
      } catch (error) {
        this.error = error.message;
      }
    } else {
      this.#needle = source.toLowerCase();
    }
  }

  get active() {
    return !this.error && (this.#regex !== null || this.#needle !== "");
  }

  test(text) {
    if (!this.active) return [];
    const ranges = [];
    if (this.#regex) {
      this.#regex.lastIndex = 0;
      for (let match = this.#regex.exec(text); match; match = this.#regex.exec(text)) {
        if (match[0].length === 0) {
          this.#regex.lastIndex += 1;
          if (ranges.length === 0) ranges.push([match.index, match.index]);
          continue;
        }
        ranges.push([match.index, match.index + match[0].length]);
        if (ranges.length > 1000) break;
      }
    } else {
      const haystack = text.toLowerCase();
      for (let at = haystack.indexOf(this.#needle); at >= 0; at = haystack.indexOf(this.#needle, at + this.#needle.length)) {
        ranges.push([at, at + this.#needle.length]);
        if (ranges.length > 1000) break;
      }
    }
    return ranges.length ? ranges.filter((r) => r[1] > r[0]) : null;
  }
}

// ---------------------------------------------------------------------------------------------
// ViewState: what the view shows, kept in the URL hash so a link reopens the same view:
// #source=A&source=B&q=FILTER&journal.unit=ssh.service&journal.priority=err&lines=10000&tail=100

class ViewState {
  sources = [];
  filter = "";
  /** Per-source server-side parameters: Map(name -> Map(key -> value)). */
  params = new Map();
  maxLines = CONFIG.defaultMaxLines;
  tail = String(CONFIG.defaultTail);

  static fromLocation() {
    const state = new ViewState();
    const merged = new URLSearchParams(window.location.search);
    for (const [key, value] of new URLSearchParams(window.location.hash.slice(1))) merged.append(key, value);
    for (const [key, value] of merged) {
      if (key === "source") {
        if (value && !state.sources.includes(value)) state.sources.push(value);
      } else if (key === "q") {
        state.filter = value;
      } else if (key === "lines") {
        const n = Number(value);
        if (Number.isInteger(n)) state.maxLines = Math.max(CONFIG.minMaxLines, Math.min(CONFIG.maxMaxLines, n));
      } else if (key === "tail") {
        if (/^(\d{1,9}|all)$/.test(value)) state.tail = value;
      } else {
        const dot = key.lastIndexOf(".");
        if (dot > 0 && CONFIG.journalFilters.includes(key.slice(dot + 1)) && value) {
          state.setParam(key.slice(0, dot), key.slice(dot + 1), value);
        }
      }
    }
    return state;
  }

  setParam(source, key, value) {
    if (!this.params.has(source)) this.params.set(source, new Map());
    if (value) this.params.get(source).set(key, value);
    else this.params.get(source).delete(key);
  }

  /** The server-side part: what a stream is opened with (changes need a new stream). */
  streamKey() {
    return JSON.stringify([this.sources, this.tail, this.#serverParams()]);
  }

  #serverParams() {
    const out = [];
    for (const name of this.sources) {
      for (const [key, value] of this.params.get(name) ?? []) out.push([`${name}.${key}`, value]);
    }
    return out;
  }

  /** The query of `GET /events` for this view. */
  eventsQuery(lastEventId) {
    const query = new URLSearchParams();
    for (const name of this.sources) query.append("source", name);
    query.set("tail", this.tail);
    for (const [key, value] of this.#serverParams()) query.append(key, value);
    if (lastEventId) query.set("lastEventId", lastEventId);
    return query.toString();
  }

  toHash() {
    const hash = new URLSearchParams();
    for (const name of this.sources) hash.append("source", name);
    for (const [key, value] of this.#serverParams()) hash.append(key, value);
    if (this.filter) hash.set("q", this.filter);
    if (this.maxLines !== CONFIG.defaultMaxLines) hash.set("lines", String(this.maxLines));
    if (this.tail !== String(CONFIG.defaultTail)) hash.set("tail", this.tail);
    return `#${hash.toString()}`;
  }

  save() {
    const next = this.toHash();
    if (window.location.hash !== next) window.history.replaceState(window.history.state, "", next);
  }
}

// ---------------------------------------------------------------------------------------------
// LogView: the scrolling list of rows. Events are queued as data and turned into rows once per
// animation frame, only as many as the cap keeps, so a burst of any size costs bounded memory.
// Follows the bottom unless the user scrolled up; a paused view queues (bounded by the cap too)
// and shows everything on resume.

class LogView {
  #container;
  #jumpButton;
  #countLabel;
  #noteLabel;
  #filterCount;
  #queue = [];           // events not yet shown, oldest first
  #queueStart = 0;       // index of the first live entry in #queue
  #entries = [];         // shown rows, oldest first: {row, body, text, segments}
  #openEntry = null;     // the entry a long line's next piece is appended to, per source
  #openBySource = new Map();
  #maxLines;
  #filter = new Filter("");
  #following = true;
  #fieldsView = false;
  #userScrolledAt = -Infinity;
  #paused = false;
  #stale = false;        // queued lines were dropped: every row shown is older, and goes too
  #dropped = 0;
  #unseen = 0;
  #received = 0;
  #flushFrame = 0;
  #flushTimer = 0;
  #sourceIndex = new Map();
  #holding = false;      // earlier lines were loaded past the cap: live rows wait (as paused)
  #gap = false;          // newest rows were dropped for earlier ones: going live starts afresh
  #loadingEarlier = false;
  #historyStart = false; // the first row shown is the oldest line there is
  #earlierButton = null;
  #fetchEarlier = null;  // (source, beforeId, limit) => Promise<{items, edge}>, or null
  #onContext = null;     // (entry) => void: a row clicked while filtering

  constructor({ container, jumpButton, countLabel, noteLabel, filterCount, earlierButton }, maxLines) {
    this.#container = container;
    this.#jumpButton = jumpButton;
    this.#countLabel = countLabel;
    this.#noteLabel = noteLabel;
    this.#filterCount = filterCount;
    this.#maxLines = maxLines;
    container.addEventListener("scroll", () => this.#onScroll(), { passive: true });
    const byUser = () => { this.#userScrolledAt = performance.now(); };
    for (const type of ["wheel", "touchmove", "keydown", "pointerdown"]) container.addEventListener(type, byUser, { passive: true });
    // Already at the top (or nothing to scroll): a wheel upwards asks for earlier lines too.
    container.addEventListener("wheel", (event) => {
      if (event.deltaY < 0 && container.scrollTop <= 0) this.loadEarlier();
    }, { passive: true });
    jumpButton.addEventListener("click", () => this.jumpToLive());
    container.addEventListener("click", (event) => this.#onRowClick(event));
    this.#earlierButton = earlierButton ?? null;
    this.#earlierButton?.addEventListener("click", () => this.loadEarlier());
    new ResizeObserver(() => { if (this.#following) this.#scrollToBottom(); }).observe(container);
    this.#renderFooter();
  }

  get paused() { return this.#paused; }
  get following() { return this.#following; }
  get rowCount() { return this.#entries.length; }
  /** The first row with an id: where a search of the file before the rows shown starts. */
  get firstIdentified() { return this.#entries.find((entry) => entry.id) ?? null; }
  get received() { return this.#received; }
  get queued() { return this.#queue.length - this.#queueStart; }

  setSources(names) {
    this.#sourceIndex = new Map(names.map((name, index) => [name, index % 8]));
  }

  /** What a click on a line does while the filter is active (open it in context). */
  setContextHandler(onContext) {
    this.#onContext = onContext;
  }

  #onRowClick(event) {
    if (!this.#onContext || !this.#filter.active || event.target.closest("button, a")) return;
    if (window.getSelection()?.toString()) return;
    const row = event.target.closest(".row");
    const entry = row && this.#entries.find((e) => e.row === row);
    if (entry && entry.kind === "line" && entry.id) this.#onContext(entry);
  }

  /** How earlier lines are fetched: `(firstEntry, limit) => {items, edge}` (`null`: the view cannot). */
  setEarlierLoader(fetchEarlier) {
    this.#fetchEarlier = fetchEarlier;
    this.#historyStart = false;
    this.#renderEarlier();
  }

  /** Loads the lines before the first row shown (by its id, or for several sources or a glob
   * by the composite id it came with: each source's lines before it) and puts them on top,
   * with no gap or duplicate at the seam; beyond the cap, the newest rows go and the view holds
   * still until "Jump to live". */
  async loadEarlier() {
    const first = this.#entries.find((entry) => entry.id);
    if (!this.#fetchEarlier || !first || this.#loadingEarlier || this.#historyStart) return;
    this.#loadingEarlier = true;
    this.#renderEarlier();
    try {
      // One more: the answer holds the first row's own line, which is dropped.
      const { items, edge } = await this.#fetchEarlier(first, CONFIG.earlierBatch + 1);
      if (this.#entries[0] !== first && !this.#entries.includes(first)) return;
      // `before=ID` ends (for the first row's source) with the line whose id it is: the first row shown.
      const seam = items.findLastIndex((item) => item.id === first.id && (item.data.source ?? first.source) === first.source
        && (item.data.file ?? null) === (first.file ?? null));
      if (seam >= 0) items.splice(seam, 1);
      this.#historyStart = edge;
      this.#prepend(items);
    } catch (error) {
      this.#noteLabel.textContent = `cannot load earlier lines: ${error.message}`;
    } finally {
      this.#loadingEarlier = false;
      this.#renderEarlier();
    }
  }

  #prepend(items) {
    const made = [];
    let open = null;
    for (const { data, id, composite } of items) {
      const text = typeof data.text === "string" ? data.text : "";
      if (open) {
        open.text += text;
        open.open = data.continues === true;
        open.segments = parseAnsi(open.text);
        if (!open.open) open = null;
        continue;
      }
      const entry = this.#newEntry("line", data.source ?? "", data, Date.now());
      entry.id = id;
      entry.composite = composite ?? null;
      entry.text = text;
      entry.open = data.continues === true;
      entry.segments = parseAnsi(text);
      made.push(entry);
      if (entry.open) open = entry;
    }
    if (!made.length) return;
    for (const entry of made) this.#applyFilter(entry, true);
    const container = this.#container;
    const heightBefore = container.scrollHeight;
    const topBefore = container.scrollTop;
    const fragment = document.createDocumentFragment();
    for (const entry of made) fragment.append(entry.row);
    container.prepend(fragment);
    this.#entries.unshift(...made);
    this.#following = false;
    const excess = this.#entries.length - this.#maxLines;
    if (excess > 0) {
      const removed = this.#entries.splice(this.#entries.length - excess, excess);
      for (const entry of removed) entry.row.remove();
      for (const [source, entry] of this.#openBySource) if (removed.includes(entry)) this.#openBySource.delete(source);
      this.#holding = true;
      this.#gap = true;
    }
    container.scrollTop = topBefore + (container.scrollHeight - heightBefore);
    this.#renderJump();
    this.#renderFooter();
    if (this.#filter.active) this.#renderFilterCount();
  }

  #renderEarlier() {
    const button = this.#earlierButton;
    if (!button) return;
    button.hidden = !this.#fetchEarlier || this.#historyStart || this.#entries.length === 0;
    button.disabled = this.#loadingEarlier;
    button.textContent = this.#loadingEarlier ? "Loading earlier lines…" : "Load earlier lines";
  }

  setMaxLines(maxLines) {
    this.#maxLines = maxLines;
    this.#scheduleFlush();
  }

  /** Shows JSON and logfmt lines as fields (their level coloured like a journal priority), or as text. */
  setFieldsView(on) {
    this.#fieldsView = on;
    for (const entry of this.#entries) this.#applyFilter(entry, true);
    if (this.#following) this.#scrollToBottom();
  }

  setFilter(filter) {
    this.#filter = filter;
    let shown = 0;
    for (const entry of this.#entries) if (this.#applyFilter(entry)) shown += 1;
    this.#renderFilterCount(shown);
    if (this.#following) this.#scrollToBottom();
  }

  /** Queues one event: `{kind: "line"|marker, data}`, with the event's id (its own, or composite). */
  push(kind, data, id = null) {
    this.#received += 1;
    this.#queue.push({ kind, data, id, received: Date.now() });
    if (this.queued > this.#maxLines) {
      // The oldest queued line goes; every row shown is older still, so it goes at the next
      // flush too: the view stays one unbroken run of the newest lines.
      this.#queueStart += 1;
      this.#dropped += 1;
      this.#stale = true;
      if (this.#queueStart > this.#maxLines) {
        this.#queue = this.#queue.slice(this.#queueStart);
        this.#queueStart = 0;
      }
    }
    this.#scheduleFlush();
  }

  pause() {
    this.#paused = true;
    this.#renderFooter();
  }

  resume() {
    this.#paused = false;
    this.#flush();
  }

  clear() {
    this.#stale = false;
    this.#holding = this.#gap = this.#historyStart = false;
    this.#container.replaceChildren();
    this.#entries = [];
    this.#queue = [];
    this.#queueStart = 0;
    this.#openBySource.clear();
    this.#dropped = this.#unseen = this.#received = 0;
    this.jumpToLive();
    this.#renderFooter();
    this.#renderFilterCount();
  }

  jumpToLive() {
    if (this.#holding) {
      this.#holding = false;
      // Newest rows went for earlier ones: start afresh from the lines that came meanwhile.
      if (this.#gap) this.#stale = true;
      this.#gap = false;
      this.#scheduleFlush();
    }
    this.#following = true;
    this.#unseen = 0;
    this.#scrollToBottom();
    this.#renderJump();
  }

  /** The rows the view shows (the filter's matches, markers included) as the text of a log
   * file: one line per row, prefixed with its source when the view has several (and with its
   * file, for a glob source's lines). */
  exportText() {
    const several = this.#sourceIndex.size > 1;
    const out = [];
    for (const entry of this.#entries) {
      if (entry.row.hidden) continue;
      const text = entry.kind === "line" ? entry.text : `[${entry.text}]`;
      const label = several ? (entry.file ? `${entry.source}/${entry.file}` : entry.source) : entry.file;
      out.push(label ? `${label}\t${text}` : text);
    }
    return out.length ? `${out.join("\n")}\n` : "";
  }

  /** The text of the rows shown (markers as `[kind]`), for tests and copying. */
  snapshot() {
    return this.#entries.map((e) => ({ source: e.source, file: e.file, kind: e.kind, text: e.text, hidden: e.row.hidden }));
  }

  #scheduleFlush() {
    if (this.#flushFrame || this.#paused) return;
    this.#flushFrame = requestAnimationFrame(() => this.#flush());
    // Hidden tabs get no animation frames; a timer still drains the queue now and then.
    this.#flushTimer = setTimeout(() => this.#flush(), 500);
  }

  #flush() {
    cancelAnimationFrame(this.#flushFrame);
    clearTimeout(this.#flushTimer);
    this.#flushFrame = this.#flushTimer = 0;
    if (this.#paused || this.#holding) return;
    const queued = this.queued;
    if (this.#stale) {
      this.#stale = false;
      this.#dropped += this.#entries.length;
      this.#entries = [];
      this.#container.replaceChildren();
      this.#openBySource.clear();
    }
    if (queued > 0) {
      // A bounded batch per frame keeps the page responsive at any rate; the rest waits its turn.
      const end = this.#queueStart + Math.min(queued, CONFIG.rowsPerFrame);
      const fresh = this.#queue.slice(this.#queueStart, end);
      if (end === this.#queue.length) {
        this.#queue = [];
        this.#queueStart = 0;
      } else {
        this.#queueStart = end;
      }
      const fragment = document.createDocumentFragment();
      let added = 0;
      for (const item of fresh) {
        const entry = this.#materialize(item);
        if (!entry) continue;
        fragment.append(entry.row);
        this.#entries.push(entry);
        added += 1;
      }
      if (!this.#following) this.#unseen += added;
      this.#container.append(fragment);
    }
    this.#trim();
    if (this.#following) this.#scrollToBottom();
    this.#renderJump();
    this.#renderEarlier();
    this.#renderFooter();
    if (queued > 0 && this.#filter.active) this.#renderFilterCount();
    if (this.queued > 0) this.#scheduleFlush();
  }

  /** Makes the row of a queued event; `null` when it continued an existing row. */
  #materialize({ kind, data, id, received }) {
    const source = typeof data.source === "string" ? data.source : "";
    const file = typeof data.file === "string" && data.file ? data.file : null;
    const own = ownID(id, source, file);
    // A glob source's lines each name their file: a long line continues within its file.
    const stream = file ? `${source}\u0000${file}` : source;
    if (kind === "line") {
      const text = typeof data.text === "string" ? data.text : "";
      const open = this.#openBySource.get(stream);
      if (open) {
        open.text += text;
        open.structured = undefined;
        open.open = data.continues === true;
        open.segments = parseAnsi(open.text);
        this.#applyFilter(open, true);
        if (data.continues !== true) this.#openBySource.delete(stream);
        return null;
      }
      const entry = this.#newEntry("line", source, data, received);
      entry.id = own;
      entry.composite = typeof id === "string" && id.startsWith("m1,") ? id : null;
      entry.text = text;
      entry.open = data.continues === true;
      entry.segments = parseAnsi(text);
      this.#applyFilter(entry, true);
      if (data.continues === true) this.#openBySource.set(stream, entry);
      return entry;
    }
    this.#openBySource.delete(stream);
    const entry = this.#newEntry(kind, source, data, received);
    const message = kind === "reset" || kind === "end" ? data.reason : data.text;
    entry.text = `${MARKER_LABELS[kind] ?? kind}: ${typeof message === "string" ? message : ""}`;
    entry.segments = [{ text: entry.text, style: null }];
    entry.row.classList.add("row-marker", `marker-${kind}`);
    this.#applyFilter(entry, true);
    return entry;
  }

  #newEntry(kind, source, data, received) {
    const row = element("div", "row");
    const time = element("time", "ts");
    const when = typeof data.time === "string" ? new Date(data.time) : new Date(received);
    if (!Number.isNaN(when.getTime())) {
      time.textContent = clockTime(when);
      time.dateTime = typeof data.time === "string" ? data.time : when.toISOString();
      time.title = time.dateTime;
    }
    const tag = element("span", `tag src-${this.#sourceIndex.get(source) ?? 0}`, source);
    row.append(time, tag);
    if (Number.isInteger(data.priority) && data.priority >= 0 && data.priority <= 7) {
      row.dataset.priority = String(data.priority);
      row.classList.add(`prio-${data.priority}`);
      time.title += ` · ${PRIORITY_NAMES[data.priority]}`;
    }
    // A glob source's line names its file (`--file app=/var/log/app/*.log`).
    const file = typeof data.file === "string" && data.file ? data.file : null;
    if (file) {
      const name = element("span", "file", file);
      name.title = `file ${file}`;
      row.append(name);
    }
    // A journal entry's host (`_HOSTNAME`) has a column of its own: a fleet's lines tell apart.
    if (typeof data.host === "string" && data.host) {
      const host = element("span", "host", data.host);
      host.title = `host ${data.host}`;
      row.append(host);
    }
    const origin = [data.identifier ?? data.unit].filter((v) => typeof v === "string" && v).join(" ");
    if (origin) {
      const pid = Number.isInteger(data.pid) || typeof data.pid === "string" ? `[${data.pid}]` : "";
      const meta = element("span", "meta", `${origin}${pid}:`);
      if (typeof data.unit === "string") meta.title = data.unit;
      row.append(meta);
    }
    const body = element("span", "text");
    row.append(body);
    return { row, body, kind, source, file, text: "", segments: [], fold: null, expanded: false };
  }

  /** Renders an entry's text, folded when it is long (with a button to unfold and fold it). */
  #render(entry, marks) {
    if (entry.structured === undefined && entry.kind === "line" && this.#fieldsView) {
      entry.structured = structuredFields(entry.text);
    }
    const fields = this.#fieldsView && !entry.open ? entry.structured : null;
    entry.row.classList.toggle("as-fields", Boolean(fields));
    if (entry.levelClass) entry.row.classList.remove(entry.levelClass);
    entry.levelClass = null;
    if (fields) {
      const priority = levelPriority(fields);
      if (priority !== null && entry.row.dataset.priority === undefined) {
        entry.levelClass = `prio-${priority}`;
        entry.row.classList.add(entry.levelClass);
      }
      renderFields(entry.body, fields);
      entry.fold?.remove();
      entry.fold = null;
      return;
    }
    const long = entry.kind === "line" && entry.text.length > CONFIG.foldChars;
    const folded = long && !entry.expanded;
    renderSegments(entry.body, folded ? clipSegments(entry.segments, CONFIG.foldShownChars) : entry.segments, marks);
    if (!long) {
      entry.fold?.remove();
      entry.fold = null;
      return;
    }
    if (!entry.fold) {
      entry.fold = element("button", "fold");
      entry.fold.type = "button";
      entry.fold.addEventListener("click", () => {
        entry.expanded = !entry.expanded;
        this.#applyFilter(entry, true);
        if (this.#following) this.#scrollToBottom();
      });
      entry.row.append(entry.fold);
    }
    const size = formatBytes(new TextEncoder().encode(entry.text).length);
    entry.fold.textContent = folded ? `… show all (${size})` : `fold (${size})`;
    entry.fold.setAttribute("aria-expanded", String(!folded));
    entry.row.classList.toggle("folded", folded);
  }

  /** Shows or hides an entry by the filter and renders its highlights; true when shown. */
  #applyFilter(entry, fresh = false) {
    const visible = entry.segments.length === 1 ? entry.segments[0].text : entry.segments.map((s) => s.text).join("");
    const ranges = this.#filter.test(visible);
    const hidden = ranges === null && entry.kind === "line";
    entry.row.hidden = hidden;
    const marks = ranges ?? [];
    if (fresh || marks.length || entry.marked) this.#render(entry, marks);
    entry.marked = marks.length > 0;
    return !hidden;
  }

  #trim() {
    const excess = this.#entries.length - this.#maxLines;
    if (excess <= 0) return;
    const heightBefore = this.#following ? 0 : this.#container.scrollHeight;
    const removed = this.#entries.splice(0, excess);
    const range = document.createRange();
    range.setStartBefore(removed[0].row);
    range.setEndAfter(removed[removed.length - 1].row);
    range.deleteContents();
    for (const [source, open] of this.#openBySource) if (removed.includes(open)) this.#openBySource.delete(source);
    this.#dropped += excess;
    // Keep what the user is reading in place when older rows vanish above it.
    if (!this.#following) this.#container.scrollTop -= heightBefore - this.#container.scrollHeight;
  }

  #onScroll() {
    const c = this.#container;
    // Scrolled to the top by the user: load the lines before the first row.
    if (c.scrollTop <= 0 && performance.now() - this.#userScrolledAt <= CONFIG.userScrollMs) this.loadEarlier();
    const atBottom = c.scrollHeight - c.scrollTop - c.clientHeight <= CONFIG.followSlackPx;
    // Holding earlier lines: the bottom is not the live end; only "Jump to live" goes back.
    if (this.#holding) return;
    if (atBottom === this.#following) return;
    // Rows change height as they are laid out (off-screen rows are not, and long ones wrap):
    // a scroll the user did not make never stops following.
    if (this.#following && performance.now() - this.#userScrolledAt > CONFIG.userScrollMs) {
      this.#scrollToBottom();
      return;
    }
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

  #renderFilterCount(shown) {
    if (!this.#filter.active) {
      this.#filterCount.textContent = this.#filter.error ? "invalid regex" : "";
      return;
    }
    const count = shown ?? this.#entries.reduce((n, e) => n + (e.row.hidden ? 0 : 1), 0);
    this.#filterCount.textContent = `${formatCount(count)} match${count === 1 ? "" : "es"}`;
  }

  #renderFooter() {
    const rows = this.#entries.length;
    this.#countLabel.textContent = `${formatCount(rows)} ${rows === 1 ? "line" : "lines"}`;
    const notes = [];
    if (this.#paused) notes.push(`paused · ${formatCount(this.queued)} waiting`);
    if (this.#dropped > 0) notes.push(`${formatCount(this.#dropped)} older dropped`);
    this.#noteLabel.textContent = notes.join(" · ");
  }
}

// ---------------------------------------------------------------------------------------------
// EventStream: the view's one EventSource on /events. Tracks the last event id (a composite id
// of every source's position); lets the browser reconnect by itself after a dropped connection
// (it sends Last-Event-ID), and reconnects on its own with backoff, resuming with ?lastEventId=,
// when the browser gives up for good after a non-200 answer (a proxy's 502, say).

class EventStream {
  #state;
  #handlers;
  #eventSource = null;
  #lastId = null;
  #reconnect;
  #running = false;
  #onlineListener = () => this.#onOnline();

  /** @param {{onEvent, onState, stillExists}} handlers */
  constructor(state, handlers) {
    this.#state = state;
    this.#handlers = handlers;
    this.#reconnect = new Reconnect({
      handlers,
      sources: () => this.#state.sources,
      running: () => this.#running,
      stop: (detail) => this.stop(detail),
      reopen: () => { if (!this.#eventSource) this.#open("reconnecting"); },
    });
  }

  get running() { return this.#running; }
  get lastId() { return this.#lastId; }

  start() {
    if (this.#running) return;
    this.#running = true;
    window.addEventListener("online", this.#onlineListener);
    this.#open(this.#lastId === null ? "connecting" : "reconnecting");
  }

  stop(detail = "") {
    this.#running = false;
    window.removeEventListener("online", this.#onlineListener);
    this.#reconnect.cancel();
    this.#close();
    this.#handlers.onState("stopped", detail);
  }

  #open(state) {
    this.#handlers.onState(state, "");
    // Relative, so the page also works when hosted under a sub-path behind a proxy.
    const eventSource = new EventSource(`events?${this.#state.eventsQuery(this.#lastId)}`);
    eventSource.onopen = () => this.#onOpen(eventSource);
    eventSource.onerror = () => this.#onError(eventSource);
    eventSource.onmessage = (event) => this.#onEvent("line", event);
    for (const kind of CONFIG.markerKinds) {
      eventSource.addEventListener(kind, (event) => this.#onEvent(kind, event));
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
    this.#reconnect.succeeded();
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
    this.#reconnect.schedule();
  }

  #onOnline() {
    if (!this.#running || !this.#reconnect.pending) return;
    this.#reconnect.succeeded();
    this.#reconnect.now();
  }

  #onEvent(kind, event) {
    if (event.target !== this.#eventSource) return;
    if (event.lastEventId) this.#lastId = event.lastEventId;
    let data;
    try {
      data = JSON.parse(event.data);
    } catch {
      data = null;
    }
    if (!data || typeof data !== "object") data = { text: String(event.data) };
    this.#handlers.onEvent(kind, data, event.lastEventId || null);
  }
}

/** The view's stream through the tab-shared worker (`stream-worker.js`): one EventSource on
 * `/events` for every tab of the origin, so any number of tabs work over HTTP/1.1. The same face
 * as ``EventStream``; when the worker cannot share a view (other parameters for a source another
 * tab streams, more history than it keeps) the view gets an ``EventStream`` of its own. */
class SharedEventStream {
  static #worker = null;
  #state;
  #handlers;
  #port = null;
  #own = null;
  #lastId = null;
  #reconnect;
  #running = false;
  #pagehide = () => this.#post({ type: "unsubscribe" });

  /** `true` where the browser has SharedWorker (else one EventSource per tab). */
  static get available() { return typeof SharedWorker === "function"; }

  constructor(state, handlers) {
    this.#state = state;
    this.#handlers = handlers;
    this.#reconnect = new Reconnect({
      handlers,
      sources: () => this.#state.sources,
      running: () => this.#running,
      stop: (detail) => this.stop(detail),
      reopen: () => this.#post({ type: "reopen" }),
    });
  }

  get running() { return this.#running; }
  get lastId() { return this.#own ? this.#own.lastId : this.#lastId; }

  start() {
    if (this.#running) return;
    this.#running = true;
    try {
      SharedEventStream.#worker ??= new SharedWorker("stream-worker.js", { name: "tailsse-stream" });
    } catch {
      this.#fallBack();
      return;
    }
    // The tab's one port to the worker: the view streaming now listens on it.
    this.#port = SharedEventStream.#worker.port;
    this.#port.onmessage = ({ data }) => this.#onMessage(data);
    this.#port.start();
    window.addEventListener("pagehide", this.#pagehide);
    this.#handlers.onState("connecting", "");
    this.#post({ type: "subscribe", sources: this.#subscription() });
  }

  stop(detail = "") {
    this.#running = false;
    this.#reconnect.cancel();
    window.removeEventListener("pagehide", this.#pagehide);
    this.#post({ type: "unsubscribe" });
    if (this.#port) this.#port.onmessage = null;
    this.#port = null;
    if (this.#own) {
      this.#own.stop(detail);
      this.#own = null;
      return;
    }
    this.#handlers.onState("stopped", detail);
  }

  #subscription() {
    return this.#state.sources.map((name) => ({
      name,
      params: [...(this.#state.params.get(name) ?? [])],
      tail: this.#state.tail,
    }));
  }

  #post(message) {
    try { this.#port?.postMessage(message); } catch { /* the worker is gone */ }
  }

  #fallBack() {
    this.#post({ type: "unsubscribe" });
    if (this.#port) this.#port.onmessage = null;
    this.#port = null;
    this.#own = new EventStream(this.#state, this.#handlers);
    this.#own.start();
  }

  #onMessage(message) {
    if (!this.#running || !message || typeof message !== "object") return;
    switch (message.type) {
      case "event":
        if (message.id) this.#lastId = message.id;
        this.#handlers.onEvent(message.kind, message.data, message.id);
        break;
      case "state":
        if (message.state === "live") this.#reconnect.succeeded();
        this.#handlers.onState(message.state, "");
        break;
      case "closed":
        this.#reconnect.schedule();
        break;
      case "unshared":
        this.#fallBack();
        break;
    }
  }
}

/** The page's own reconnecting once the browser gave up on a stream (a non-200 answer): after a
 * growing delay (said in the status), a check that the view's sources still exist — asking for a
 * login when the server wants one — then `reopen()`, or `stop()` naming the sources gone. */
class Reconnect {
  #attempt = 0;
  #timer = 0;
  #stream;

  /** @param {{handlers, sources: () => string[], running: () => boolean, stop, reopen}} stream */
  constructor(stream) {
    this.#stream = stream;
  }

  get pending() { return this.#timer !== 0; }

  /** The stream is live again: the next failure waits the shortest delay. */
  succeeded() { this.#attempt = 0; }

  cancel() {
    clearTimeout(this.#timer);
    this.#timer = 0;
  }

  schedule() {
    if (this.#timer) return;
    const delay = backoffDelay(this.#attempt);
    this.#attempt += 1;
    this.#stream.handlers.onState("reconnecting", `retry in ${Math.max(1, Math.round(delay / 1000))} s`);
    this.#timer = setTimeout(() => this.now(), delay);
  }

  async now() {
    this.cancel();
    if (!this.#stream.running()) return;
    // A source the server no longer offers would answer 404 forever: stop instead.
    const missing = await this.#stream.handlers.stillExists(this.#stream.sources());
    if (missing && missing.length) {
      this.#stream.stop(`the server no longer offers ${missing.join(", ")}`);
      return;
    }
    if (this.#stream.running()) this.#stream.reopen();
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

  get state() { return this.#root.dataset.state; }

  show(state, detail = "") {
    if (this.#root.dataset.state === state && this.#detail.textContent === detail) return;
    this.#root.dataset.state = state;
    this.#text.textContent = STATUS_LABELS[state] ?? state;
    this.#detail.textContent = detail;
    this.#root.title = detail;
  }
}

// ---------------------------------------------------------------------------------------------
// SourcePicker: the source checkboxes (and journal filters) in the bar's menu, and the list shown
// while no source is chosen.

class SourcePicker {
  #list;
  #summary;
  #journal;
  #empty;
  #emptyTitle;
  #emptyText;
  #emptyList;
  #sources = [];
  #onChange;

  constructor({ list, summary, journal, empty, emptyTitle, emptyText, emptyList }, onChange) {
    this.#list = list;
    this.#summary = summary;
    this.#journal = journal;
    this.#empty = empty;
    this.#emptyTitle = emptyTitle;
    this.#emptyText = emptyText;
    this.#emptyList = emptyList;
    this.#onChange = onChange;
    list.addEventListener("change", () => {
      const chosen = [...list.querySelectorAll("input[type=checkbox]:checked")].map((box) => box.value);
      onChange({ sources: chosen });
    });
    journal.addEventListener("change", (event) => {
      const input = event.target.closest("[data-source][data-key]");
      if (input) onChange({ param: [input.dataset.source, input.dataset.key, input.value.trim()] });
    });
    emptyList.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-sources]");
      if (button) onChange({ sources: JSON.parse(button.dataset.sources) });
    });
  }

  get sources() { return this.#sources; }

  find(name) {
    return this.#sources.find((s) => s.name === name) ?? null;
  }

  setSources(sources) {
    this.#sources = sources;
    const legend = this.#list.querySelector("legend");
    this.#list.replaceChildren(legend, ...sources.map((source) => {
      const label = element("label", "source-option");
      const box = element("input");
      box.type = "checkbox";
      box.value = source.name;
      label.append(box, element("span", "source-option-name", source.name),
        element("span", "source-option-detail", describeSource(source)));
      return label;
    }));
    const buttons = sources.map((s) => this.#sourceButton(s.name, describeSource(s), [s.name]));
    if (sources.length > 1) buttons.push(this.#sourceButton("All sources", `${sources.length} on one stream`, sources.map((s) => s.name)));
    this.#emptyList.replaceChildren(...buttons);
  }

  /** Reflects the view's state: checked sources, the summary, the journal filter controls. */
  show(state) {
    for (const box of this.#list.querySelectorAll("input[type=checkbox]")) box.checked = state.sources.includes(box.value);
    this.#summary.textContent = state.sources.length ? state.sources.join(", ") : "none";
    const journals = state.sources.filter((name) => this.find(name)?.kind === "journal");
    this.#journal.replaceChildren(...journals.map((name) => this.#journalFields(name, state.params.get(name) ?? new Map())));
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

  #journalFields(name, values) {
    const set = element("fieldset", "journal-set");
    set.append(element("legend", "", `${name}: server-side filters`));
    const field = (key, label, control) => {
      control.dataset.source = name;
      control.dataset.key = key;
      control.id = `jf-${name}-${key}`;
      const wrap = element("label", "journal-field");
      wrap.htmlFor = control.id;
      wrap.append(element("span", "journal-field-label", label), control);
      set.append(wrap);
    };
    // Host: any name the journal's entries carry; the hosts GET /sources lists are offered.
    const host = element("input", "journal-input");
    host.placeholder = "any host";
    host.value = values.get("host") ?? "";
    const list = element("datalist");
    list.id = `jf-${name}-hosts`;
    list.dataset.hostsOf = name;
    list.append(...this.#hostOptions(name));
    set.append(list);
    host.setAttribute("list", list.id);
    field("host", "Host", host);
    const unit = element("input", "journal-input");
    unit.placeholder = "e.g. ssh.service";
    unit.value = values.get("unit") ?? "";
    field("unit", "Unit", unit);
    const priority = element("select", "journal-input");
    const any = element("option", "", "any");
    any.value = "";
    priority.append(any, ...PRIORITY_NAMES.map((p, i) => {
      const option = element("option", `prio-option-${i}`, `${i} ${p}${i < 7 ? " and above" : ""}`);
      option.value = p;
      return option;
    }));
    priority.value = values.get("priority") ?? "";
    field("priority", "Priority", priority);
    const identifier = element("input", "journal-input");
    identifier.placeholder = "e.g. sshd";
    identifier.value = values.get("identifier") ?? "";
    field("identifier", "Identifier", identifier);
    return set;
  }

  /**
   * Takes a fresh `GET /sources` answer for the journals' host suggestions only (new hosts appear
   * while the page is open), leaving the controls and what is typed in them alone.
   */
  refreshHosts(sources) {
    this.#sources = sources;
    for (const list of this.#journal.querySelectorAll("datalist[data-hosts-of]")) {
      list.replaceChildren(...this.#hostOptions(list.dataset.hostsOf));
    }
  }

  #hostOptions(name) {
    const hosts = this.find(name)?.hosts;
    return (Array.isArray(hosts) ? hosts : []).filter((h) => typeof h === "string").map((h) => {
      const option = element("option");
      option.value = h;
      return option;
    });
  }

  #sourceButton(title, detail, names) {
    const button = element("button", "source-choice");
    button.type = "button";
    button.dataset.sources = JSON.stringify(names);
    button.append(element("span", "source-choice-name", title), element("span", "source-choice-detail", detail));
    const item = element("li");
    item.append(button);
    return item;
  }
}

function describeSource(source) {
  const kind = source.kind === "journal" ? "journal" : "file";
  const where = typeof source.path === "string" ? ` · ${source.path}` : typeof source.directory === "string" ? ` · ${source.directory}` : "";
  const waiting = typeof source.problem === "string" ? ` · ${source.problem}` : source.following === false ? " · not followed yet" : "";
  const polling = typeof source.notice === "string" ? ` · ${source.notice}` : "";
  return `${kind}${where}${waiting}${polling}`;
}

// ---------------------------------------------------------------------------------------------
// LoginForm: asks for a token when the server answers 401 and posts it to /login, which sets an
// HttpOnly session cookie that fetch and EventSource then send by themselves. The token itself is
// never stored by the page.

class LoginForm {
  #root;
  #form;
  #input;
  #button;
  #error;
  #logout;
  #waiters = [];

  constructor({ root, form, input, button, error, logout }) {
    this.#root = root;
    this.#form = form;
    this.#input = input;
    this.#button = button;
    this.#error = error;
    this.#logout = logout;
    this.#form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.#submit();
    });
    this.#logout.addEventListener("click", () => this.#logOut());
  }

  /** Shows the form; resolves once the server accepted a token. */
  ask() {
    this.#root.hidden = false;
    this.#logout.hidden = true;
    this.#input.focus();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  async #submit() {
    const token = this.#input.value.trim();
    if (!token) return;
    this.#button.disabled = true;
    this.#error.textContent = "";
    try {
      const response = await fetch("login", {
        method: "POST",
        body: new URLSearchParams({ token }),
        credentials: "same-origin",
        cache: "no-store",
      });
      if (response.status === 204) {
        this.#input.value = "";
        this.#root.hidden = true;
        this.#logout.hidden = false;
        for (const resolve of this.#waiters.splice(0)) resolve();
        return;
      }
      let message = `The server answered ${response.status}.`;
      if (response.status === 401) message = "Wrong token.";
      else {
        try { message = (await response.json()).error ?? message; } catch { /* keep the status */ }
      }
      this.#error.textContent = message;
    } catch (error) {
      this.#error.textContent = `Cannot reach tailsse: ${error.message ?? error}`;
    } finally {
      this.#button.disabled = false;
    }
  }

  async #logOut() {
    try {
      await fetch("logout", { method: "POST", credentials: "same-origin" });
    } finally {
      window.location.reload();
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Viewer: ties the pieces together.

class Viewer {
  #state = ViewState.fromLocation();
  #log;
  #status;
  #picker;
  #pauseButton;
  #clearButton;
  #downloadButton;
  #fieldsButton;
  #filterInput;
  #capInput;
  #menu;
  #stream = null;
  #streamKey = null;
  #listAttempt = 0;
  #filterTimer = 0;
  #login;
  #searchButton;

  constructor() {
    this.#menu = byId("sources-menu");
    this.#log = new LogView({
      container: byId("log"),
      jumpButton: byId("jump-button"),
      earlierButton: byId("earlier-button"),
      countLabel: byId("line-count"),
      noteLabel: byId("foot-note"),
      filterCount: byId("filter-count"),
    }, this.#state.maxLines);
    this.#status = new StatusView({ root: byId("status"), text: byId("status-text"), detail: byId("status-detail") });
    this.#picker = new SourcePicker({
      list: byId("source-list"),
      summary: byId("sources-summary"),
      journal: byId("journal-filters"),
      empty: byId("empty"),
      emptyTitle: byId("empty-title"),
      emptyText: byId("empty-text"),
      emptyList: byId("empty-list"),
    }, (change) => this.#onPickerChange(change));
    this.#login = new LoginForm({
      root: byId("login"),
      form: byId("login-form"),
      input: byId("login-token"),
      button: byId("login-button"),
      error: byId("login-error"),
      logout: byId("logout-button"),
    });
    byId("context-close").addEventListener("click", () => this.#closeContext());
    this.#searchButton = byId("search-file-button");
    this.#searchButton.addEventListener("click", () => this.#searchFile());
    this.#pauseButton = byId("pause-button");
    this.#pauseButton.addEventListener("click", () => this.#togglePause());
    this.#clearButton = byId("clear-button");
    this.#clearButton.addEventListener("click", () => this.#log.clear());
    this.#fieldsButton = byId("fields-button");
    this.#fieldsButton.addEventListener("click", () => this.#toggleFields());
    this.#downloadButton = byId("download-button");
    this.#downloadButton.addEventListener("click", () => this.#download());
    this.#filterInput = byId("filter-input");
    this.#filterInput.value = this.#state.filter;
    this.#filterInput.addEventListener("input", () => this.#onFilterInput());
    this.#capInput = byId("cap-input");
    this.#capInput.value = String(this.#state.maxLines);
    this.#capInput.addEventListener("change", () => this.#onCapChange());
    this.#applyFilter();
    window.addEventListener("hashchange", () => this.#onHashChange());
    document.addEventListener("click", (event) => {
      if (this.#menu.open && !this.#menu.contains(event.target)) this.#menu.open = false;
    });
    // Opening the menu asks for the sources again: hosts that started shipping since are offered.
    this.#menu.addEventListener("toggle", () => {
      if (this.#menu.open) fetchSources().then((sources) => this.#picker.refreshHosts(sources), () => {});
    });
    document.addEventListener("keydown", (event) => this.#onKey(event));
    const viewer = this;
    window.tailsse = Object.freeze({
      snapshot: () => this.#log.snapshot(),
      get rowCount() { return viewer.#log.rowCount; },
      get received() { return viewer.#log.received; },
      get paused() { return viewer.#log.paused; },
      get following() { return viewer.#log.following; },
      get status() { return viewer.#status.state; },
      get queued() { return viewer.#log.queued; },
      get lastEventId() { return viewer.#stream?.lastId ?? null; },
    });
  }

  async start() {
    this.#status.show("connecting", "listing sources");
    try {
      this.#picker.setSources(await fetchSources());
      this.#listAttempt = 0;
    } catch (error) {
      if (error instanceof LoginRequired) {
        this.#status.show("stopped", "log in to continue");
        await this.#login.ask();
        this.start();
        return;
      }
      const delay = backoffDelay(this.#listAttempt++);
      this.#status.show("reconnecting", `cannot list sources; retry in ${Math.round(delay / 1000)} s`);
      this.#picker.showEmpty("Cannot reach tailsse", String(error.message ?? error));
      setTimeout(() => this.start(), delay);
      return;
    }
    this.#openView();
  }

  #openView() {
    const sources = this.#picker.sources;
    const state = this.#state;
    if (state.sources.length === 0 && sources.length === 1) {
      state.sources = [sources[0].name];
    }
    state.save();
    this.#picker.show(state);
    if (state.sources.length === 0) {
      this.#close();
      this.#status.show("idle", sources.length ? "no source chosen" : "no sources configured");
      this.#picker.showEmpty(
        sources.length ? "Choose a source" : "No sources",
        sources.length ? "Pick a log to follow, or all of them on one stream." : "This tailsse serves no sources.",
      );
      return;
    }
    const unknown = state.sources.filter((name) => !this.#picker.find(name));
    if (unknown.length) {
      this.#close();
      this.#status.show("stopped", "unknown source");
      this.#picker.showEmpty("Unknown source", `The server offers no source named “${unknown.join("”, “")}”.`);
      return;
    }
    this.#picker.hideEmpty();
    const key = state.streamKey();
    if (this.#stream && key === this.#streamKey) return;
    this.#close();
    this.#log.clear();
    this.#log.setSources(state.sources);
    document.title = `${state.sources.join(", ")} · tailsse`;
    this.#streamKey = key;
    const Stream = SharedEventStream.available ? SharedEventStream : EventStream;
    this.#stream = new Stream(state, {
      onEvent: (kind, data, id) => this.#log.push(kind, data, id),
      onState: (status, detail) => this.#onState(status, detail),
      stillExists: (names) => this.#missingSources(names),
    });
    this.#log.setEarlierLoader(this.#earlierLoader(state));
    this.#renderSearchButton();
    this.#log.setContextHandler((entry) => this.#openContext(entry));
    this.#stream.start();
    this.#pauseButton.disabled = false;
    this.#clearButton.disabled = false;
    this.#downloadButton.disabled = false;
  }

  /** Whether a source answers `GET /sources/NAME/lines` (a file, a glob or the journal). */
  #hasHistory(name) {
    const info = this.#picker.find(name);
    return Boolean(info && ["file", "journal"].includes(info.kind));
  }

  /** Whether a source is a glob (its lines name their files; its ids are composite). */
  #isGlob(name) {
    return Array.isArray(this.#picker.find(name)?.files);
  }

  /** Fetches history as NDJSON from `path` (`sources/NAME/lines` or `events/lines`): each item
   * with its line's own id (and the composite id it came with, if any). */
  async #fetchLines(path, query) {
    const response = await fetch(`${path}?${query}`, { headers: { Accept: "application/x-ndjson" } });
    if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
    const items = (await response.text()).split("\n").filter(Boolean).map((line) => {
      const data = JSON.parse(line);
      const composite = typeof data.id === "string" && data.id.startsWith("m1,") ? data.id : null;
      const file = typeof data.file === "string" && data.file ? data.file : null;
      const id = composite && path === "events/lines" ? ownID(composite, data.source, file) : composite && file ? ownPart(composite, file) : data.id;
      return { data, id, composite };
    });
    return { items, edge: response.headers.get("TailSSE-History-Edge") === "yes" };
  }

  static #linesPath(source) {
    return `sources/${encodeURIComponent(source)}/lines`;
  }

  /** Shows a line with the lines around it in its file (or journal), the line and the filter's
   * matches marked; Esc or Back returns to the live view, which kept running. */
  async #openContext(entry) {
    if (!this.#hasHistory(entry.source)) return;
    const params = [...(this.#state.params.get(entry.source) ?? [])];
    const query = (direction, limit) => {
      const q = new URLSearchParams({ [direction]: entry.id, limit: String(limit) });
      if (entry.file) q.set("file", entry.file);
      for (const [key, value] of params) q.append(key, value);
      return q;
    };
    const panel = byId("context");
    const list = byId("context-log");
    byId("context-title").textContent = `${entry.file ? `${entry.source}/${entry.file}` : entry.source}: the line in context`;
    list.replaceChildren(element("p", "context-note", "Loading…"));
    panel.hidden = false;
    byId("context-close").focus();
    try {
      const [before, after] = await Promise.all([
        this.#fetchLines(Viewer.#linesPath(entry.source), query("before", CONFIG.contextLines + 1)),
        this.#fetchLines(Viewer.#linesPath(entry.source), query("after", CONFIG.contextLines)),
      ]);
      const filter = new Filter(this.#state.filter);
      const rowsMade = [...before.items, ...after.items].map(({ data, id }) => {
        const row = element("div", "row");
        const text = typeof data.text === "string" ? data.text : "";
        const body = element("span", "text");
        renderSegments(body, parseAnsi(text), filter.test(text) ?? []);
        row.append(body);
        if (id === entry.id) row.classList.add("context-target");
        return row;
      });
      list.replaceChildren(...rowsMade);
      list.querySelector(".context-target")?.scrollIntoView({ block: "center" });
    } catch (error) {
      list.replaceChildren(element("p", "context-note", `cannot load the context: ${error.message}`));
    }
  }

  /** Lists the filter's matches before the first row shown, found by the server in the file
   * (`grep=`), newest last; a click opens one in context. */
  async #searchFile() {
    const first = this.#log.firstIdentified;
    const grep = grepParameters(this.#state.filter);
    const sources = this.#state.sources;
    if (!first || !grep || !sources.every((name) => this.#hasHistory(name))) return;
    const several = sources.length > 1 || this.#isGlob(sources[0]);
    if (several && !first.composite) return;
    const panel = byId("context");
    const list = byId("context-log");
    byId("context-title").textContent = `${sources.join(", ")}: matches of “${this.#state.filter}” before the lines shown`;
    list.replaceChildren(element("p", "context-note", several ? "Searching the files…" : "Searching the file…"));
    panel.hidden = false;
    byId("context-close").focus();
    try {
      // Several sources or a glob: each one's matches before the first row (GET /events/lines).
      const query = new URLSearchParams({ before: several ? first.composite : first.id, limit: String(CONFIG.searchLimit + 1), ...grep });
      for (const name of several ? sources : []) query.append("source", name);
      for (const name of sources) {
        for (const [key, value] of this.#state.params.get(name) ?? []) query.append(several ? `${name}.${key}` : key, value);
      }
      const { items, edge } = await this.#fetchLines(several ? "events/lines" : Viewer.#linesPath(first.source), query);
      const seam = items.findLastIndex((item) => item.id === first.id && (item.data.source ?? first.source) === first.source
        && (item.data.file ?? null) === (first.file ?? null));
      if (seam >= 0) items.splice(seam, 1);
      const filter = new Filter(this.#state.filter);
      const rowsMade = items.map(({ data, id }) => {
        const row = element("div", "row search-hit");
        const text = typeof data.text === "string" ? data.text : "";
        const body = element("span", "text");
        renderSegments(body, parseAnsi(text), filter.test(text) ?? []);
        row.append(body);
        row.title = "Show in context";
        const source = typeof data.source === "string" ? data.source : first.source;
        const file = typeof data.file === "string" && data.file ? data.file : null;
        if (several) row.prepend(element("span", "tag", file ? `${source}/${file}` : source));
        row.addEventListener("click", () => this.#openContext({ source, file, id }));
        return row;
      });
      const note = items.length === 0 ? "No match before the lines shown."
        : `${formatCount(items.length)} match${items.length === 1 ? "" : "es"}${edge ? ", back to the start of the log" : " (the latest; more lie further back)"} — click one to see it in context.`;
      list.replaceChildren(element("p", "context-note", note), ...rowsMade);
    } catch (error) {
      list.replaceChildren(element("p", "context-note", `cannot search the file: ${error.message}`));
    }
  }

  #closeContext() {
    const panel = byId("context");
    if (panel.hidden) return false;
    panel.hidden = true;
    byId("log").focus();
    return true;
  }

  /** Fetches the lines before an id of the view's one source (a file or the journal, not a
   * glob), or `null` when the view cannot load earlier lines. */
  #earlierLoader(state) {
    if (!state.sources.every((name) => this.#hasHistory(name))) return null;
    if (state.sources.length === 1 && !this.#isGlob(state.sources[0])) {
      const params = [...(state.params.get(state.sources[0]) ?? [])];
      return (first, limit) => {
        const query = new URLSearchParams({ before: first.id, limit: String(limit) });
        for (const [key, value] of params) query.append(key, value);
        return this.#fetchLines(Viewer.#linesPath(first.source), query);
      };
    }
    // Several sources, or a glob's files: each one's lines before the first row, by the composite
    // id that row came with (GET /events/lines), up to `limit` of each.
    return (first, limit) => {
      if (!first.composite) return Promise.resolve({ items: [], edge: true });
      const query = new URLSearchParams();
      for (const name of state.sources) query.append("source", name);
      for (const name of state.sources) {
        for (const [key, value] of state.params.get(name) ?? []) query.append(`${name}.${key}`, value);
      }
      query.set("before", first.composite);
      query.set("limit", String(limit));
      return this.#fetchLines("events/lines", query);
    };
  }

  /** Saves what the view shows as `SOURCES-YYYYMMDD-HHMMSS.log`. */
  #download() {
    const now = new Date();
    const stamp = `${now.getFullYear()}${pad(now.getMonth() + 1)}${pad(now.getDate())}-${pad(now.getHours())}${pad(now.getMinutes())}${pad(now.getSeconds())}`;
    const url = URL.createObjectURL(new Blob([this.#log.exportText()], { type: "text/plain;charset=utf-8" }));
    const link = element("a");
    link.href = url;
    link.download = `${this.#state.sources.join("+")}-${stamp}.log`;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  #close() {
    if (!this.#stream) return;
    const stream = this.#stream;
    this.#stream = null;
    this.#streamKey = null;
    stream.stop();
    document.title = "tailsse";
    this.#pauseButton.disabled = true;
    this.#clearButton.disabled = true;
    this.#downloadButton.disabled = true;
  }

  #onPickerChange(change) {
    if (change.sources) {
      const order = this.#picker.sources.map((s) => s.name);
      this.#state.sources = change.sources.slice().sort((a, b) => order.indexOf(a) - order.indexOf(b));
    }
    if (change.param) this.#state.setParam(...change.param);
    this.#openView();
  }

  #onHashChange() {
    const previous = this.#state;
    this.#state = ViewState.fromLocation();
    if (this.#state.toHash() === previous.toHash()) return;
    this.#filterInput.value = this.#state.filter;
    this.#capInput.value = String(this.#state.maxLines);
    this.#log.setMaxLines(this.#state.maxLines);
    this.#applyFilter();
    this.#openView();
  }

  #onFilterInput() {
    clearTimeout(this.#filterTimer);
    this.#filterTimer = setTimeout(() => {
      this.#state.filter = this.#filterInput.value;
      this.#state.save();
      this.#applyFilter();
    }, 120);
  }

  #applyFilter() {
    const filter = new Filter(this.#state.filter);
    this.#filterInput.classList.toggle("invalid", Boolean(filter.error));
    this.#filterInput.title = filter.error;
    this.#log.setFilter(filter);
    this.#renderSearchButton();
  }

  /** "Search the file" is offered while filtering a view of one file or the journal. */
  #renderSearchButton() {
    const filter = new Filter(this.#state.filter);
    const sources = this.#state.sources;
    this.#searchButton.hidden = !(filter.active && sources.every((name) => this.#hasHistory(name)));
    this.#searchButton.textContent = sources.length > 1 || this.#isGlob(sources[0]) ? "Search the files" : "Search the file";
  }

  #onCapChange() {
    const n = Number(this.#capInput.value);
    if (!Number.isInteger(n)) return;
    this.#state.maxLines = Math.max(CONFIG.minMaxLines, Math.min(CONFIG.maxMaxLines, n));
    this.#capInput.value = String(this.#state.maxLines);
    this.#state.save();
    this.#log.setMaxLines(this.#state.maxLines);
  }

  #toggleFields() {
    const on = this.#fieldsButton.getAttribute("aria-pressed") !== "true";
    this.#fieldsButton.setAttribute("aria-pressed", String(on));
    this.#log.setFieldsView(on);
  }

  #togglePause() {
    if (this.#log.paused) this.#log.resume(); else this.#log.pause();
    const paused = this.#log.paused;
    this.#pauseButton.textContent = paused ? "Resume" : "Pause";
    this.#pauseButton.setAttribute("aria-pressed", String(paused));
    document.body.classList.toggle("is-paused", paused);
  }

  #onKey(event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const typing = event.target instanceof HTMLInputElement || event.target instanceof HTMLSelectElement
      || event.target instanceof HTMLTextAreaElement;
    if (event.key === "Escape") {
      if (this.#closeContext()) return;
      if (event.target === this.#filterInput) {
        this.#filterInput.value = "";
        this.#onFilterInput();
        this.#filterInput.blur();
      } else if (this.#menu.open) {
        this.#menu.open = false;
      }
      return;
    }
    if (typing) return;
    if (event.key === "/") {
      event.preventDefault();
      this.#filterInput.focus();
      this.#filterInput.select();
    } else if (event.key === "f" || event.key === "F") {
      this.#toggleFields();
    } else if (event.key === "p" || event.key === "P") {
      if (!this.#pauseButton.disabled) this.#togglePause();
    } else if (event.key === "End") {
      event.preventDefault();
      this.#log.jumpToLive();
    }
  }

  #onState(status, detail) {
    if (!this.#stream && status !== "stopped") return;
    this.#status.show(status, detail);
  }

  /**
   * The names the server no longer offers; undefined when it could not be asked. When the server
   * asks for a login (a restart with a new token file, a revoked token), waits for one first, so
   * the stream then resumes exactly where it stopped.
   */
  async #missingSources(names) {
    try {
      const sources = await fetchSources();
      this.#picker.setSources(sources);
      this.#picker.show(this.#state);
      return names.filter((name) => !sources.some((s) => s.name === name));
    } catch (error) {
      if (!(error instanceof LoginRequired)) return undefined;
      this.#status.show("stopped", "log in to continue");
      await this.#login.ask();
      return this.#missingSources(names);
    }
  }
}

new Viewer().start();
