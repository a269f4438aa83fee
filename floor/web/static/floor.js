// The live floor (map + sortable list) and the big-screen wallboard, both fed by the SSE
// stream /api/v1/floor/stream: a full `floor` snapshot first, then `diff`s.

import { api, toLogin } from "./api.js";
import { clock, duration, fill, h, param, parseTime, setParams } from "./util.js";

// The severity sort: what a supervisor acts on first. A violation (a norm broken now), then a
// fault (headset or radar lost: the box cannot judge), then a warning; offline seats (often
// empty desks) after those, before the seats that are fine.
const RANK = { violation: 0, fault: 1, warn: 2, offline: 3, ok: 4 };
export const LEVEL_TEXT = {
  ok: "OK",
  warn: "Warning",
  violation: "Violation",
  offline: "Offline",
  fault: "Fault",
};
// A shape per level as well as a colour: the level is never told by colour alone.
const LEVEL_MARK = { ok: "✓", warn: "▲", violation: "■", offline: "○", fault: "✕" };
const REASON_TEXT = {
  "hold.warn": "on hold past the warning limit",
  "hold.violation": "on hold too long",
  "ring.late": "ringing past the answer limit",
  "away.5min": "away past the agent limit",
  "away.15min": "away past the supervisor limit",
  "call.dead_air": "dead air on the call",
  speech_on_hold: "speech while on hold",
  "headset.lost": "headset lost",
  "radar.lost": "radar lost",
  "audio.lost": "audio lost",
  "shift.absent": "absent from the shift",
  "floor.loud": "loud floor",
  "state.bad": "seat state unreadable",
  "state.unknown": "no state from the seat",
  offline: "seat offline",
};
const CALL_TEXT = {
  idle: "idle",
  ringing: "ringing",
  active: "on call",
  hold: "on hold",
  held: "on hold",
  dialing: "dialing",
  wrapup: "wrap-up",
};

export function reasonText(key) {
  return REASON_TEXT[key] || key;
}

export function levelOf(seat) {
  return RANK[seat.level] === undefined ? "ok" : seat.level;
}

function stateText(seat) {
  if (seat.online === false || seat.level === "offline") return "offline";
  const call = seat.call || "idle";
  let text = CALL_TEXT[call] || call;
  if (call === "idle") {
    if (seat.presence === "away") text = "away";
    else if (seat.presence === "unknown") text = "idle (presence unknown)";
  }
  if (seat.muted && call !== "idle") text += ", muted";
  return text;
}

function sinceOf(seat) {
  return parseTime(seat.since) ?? parseTime(seat.call_since) ?? parseTime(seat.presence_since);
}

function count(value) {
  return value === null || value === undefined ? "—" : String(value);
}

/** The stream: snapshot, diffs, reconnects; status "connecting" | "live" | "stale". */
class FloorStream {
  constructor({ snapshot, diff, status }) {
    this.handlers = { snapshot, diff, status };
    this.source = null;
    this.retry = 1000;
    this.timer = null;
  }

  open() {
    this.close();
    const source = new EventSource("/api/v1/floor/stream");
    this.source = source;
    source.addEventListener("floor", (event) => {
      this.retry = 1000;
      const data = JSON.parse(event.data);
      this.handlers.snapshot(data);
      this.handlers.status("live");
    });
    source.addEventListener("diff", (event) => this.handlers.diff(JSON.parse(event.data)));
    source.addEventListener("error", () => {
      if (this.source !== source) return;
      this.handlers.status("stale");
      if (source.readyState === EventSource.CLOSED) this.later();
      // else: the browser reconnects by itself; a new `floor` snapshot says we are live.
    });
  }

  /** The browser gave up (an HTTP error, e.g. a logged-out session): retry, backing off. */
  later() {
    this.close();
    this.timer = window.setTimeout(async () => {
      try {
        await api.me();
      } catch (error) {
        if (error.status === 401) {
          toLogin();
          return;
        }
      }
      this.retry = Math.min(this.retry * 2, 30000);
      this.open();
    }, this.retry);
  }

  close() {
    if (this.timer) window.clearTimeout(this.timer);
    this.timer = null;
    if (this.source) this.source.close();
    this.source = null;
  }
}

/** The floor model in the page: seats by id, team aggregates, totals, the server's clock. */
class FloorState {
  constructor() {
    this.seats = new Map();
    this.teams = [];
    this.totals = null;
    this.skew = 0; // server wall clock minus ours, ms
    this.loaded = false;
  }

  now() {
    return Date.now() + this.skew;
  }

  clock(ts) {
    const server = parseTime(ts);
    if (server !== null) this.skew = server - Date.now();
  }

  /** A full snapshot; returns the seats that changed (all of them on the first one). */
  snapshot(data) {
    this.clock(data.ts);
    const before = this.seats;
    this.seats = new Map((data.seats || []).map((seat) => [seat.seat, seat]));
    this.teams = data.teams || [];
    this.totals = data.totals || null;
    const changed = new Map();
    for (const [id, seat] of this.seats) changed.set(id, { before: before.get(id), seat });
    for (const [id, seat] of before)
      if (!this.seats.has(id)) changed.set(id, { before: seat, seat: null });
    const first = !this.loaded;
    this.loaded = true;
    return { changed, first };
  }

  diff(data) {
    this.clock(data.ts);
    const changed = new Map();
    for (const [id, seat] of Object.entries(data.seats || {})) {
      changed.set(id, { before: this.seats.get(id), seat });
      if (seat === null) this.seats.delete(id);
      else this.seats.set(id, seat);
    }
    if (data.teams) this.teams = data.teams;
    if (data.totals) this.totals = data.totals;
    return { changed, first: false };
  }
}

function statusBadge() {
  const badge = h("span", { class: "status connecting", role: "status", id: "stream-status" });
  let lostAt = null;
  const set = (status) => {
    badge.className = `status ${status}`;
    if (status === "live") {
      lostAt = null;
      fill(badge, "● live");
    } else if (status === "stale") {
      lostAt = lostAt || Date.now();
      fill(badge, `stale: live updates lost at ${new Date(lostAt).toLocaleTimeString()}, reconnecting…`);
    } else fill(badge, "connecting…");
    document.body.classList.toggle("stale", status === "stale");
  };
  set("connecting");
  return { badge, set };
}

// ----- alerts on a new violation (off by default; the choice is kept in this browser) -----

class Alerts {
  constructor(announce) {
    this.announce = announce;
    this.flash = localStorage.getItem("seatbox.flash") === "1";
    this.sound = localStorage.getItem("seatbox.sound") === "1";
    this.audio = null;
  }

  toggles() {
    const box = (id, label, key) => {
      const input = h("input", { type: "checkbox", id, checked: this[key] });
      input.addEventListener("change", () => {
        this[key] = input.checked;
        localStorage.setItem(`seatbox.${key}`, input.checked ? "1" : "0");
        if (key === "sound" && input.checked) this.unlock();
      });
      return h("label", { class: "toggle", for: id }, input, ` ${label}`);
    };
    return h(
      "fieldset",
      { class: "alerts" },
      h("legend", {}, "On a new violation"),
      box("alert-flash", "flash", "flash"),
      box("alert-sound", "sound", "sound"),
    );
  }

  unlock() {
    // Browsers let a page play sound only after a user gesture: this toggle is one.
    try {
      this.audio = this.audio || new AudioContext();
      this.audio.resume();
    } catch {
      this.audio = null;
    }
  }

  beep() {
    if (!this.audio) this.unlock();
    const ctx = this.audio;
    if (!ctx) return;
    const tone = ctx.createOscillator();
    const gain = ctx.createGain();
    tone.frequency.value = 880;
    gain.gain.setValueAtTime(0.2, ctx.currentTime);
    gain.gain.exponentialRampToValueAtTime(0.001, ctx.currentTime + 0.6);
    tone.connect(gain).connect(ctx.destination);
    tone.start();
    tone.stop(ctx.currentTime + 0.6);
  }

  violation(seat, elements) {
    if (!this.flash && !this.sound) return;
    const why = (seat.reasons || []).map(reasonText).join(", ") || "violation";
    this.announce(`New violation at ${seat.label || seat.seat}: ${why}`);
    if (this.flash)
      for (const el of elements) {
        el.classList.remove("flash");
        void el.offsetWidth; // restart the animation
        el.classList.add("flash");
        window.setTimeout(() => el.classList.remove("flash"), 10000);
      }
    if (this.sound) this.beep();
  }
}

// ----- the floor page -----

const COLUMNS = [
  { key: "seat", title: "Seat" },
  { key: "agent", title: "Agent" },
  { key: "team", title: "Team" },
  { key: "state", title: "State" },
  { key: "time", title: "Time in state" },
  { key: "level", title: "Level" },
];

// Rows in the list at most: a human reads the top of a severity-sorted list, and thousands
// of rows re-laid out twice a second would keep the page busy. The map shows every seat.
const LIST_MAX = 500;
// More seats than this on the map: small squares instead of tiles (a floor of thousands).
const COMPACT_OVER = 300;

const COLLATOR = new Intl.Collator(undefined, { numeric: true });

/** A comparator for the list; `since` gives a seat's state start (ms, cached per seat),
 * `rank` (optional) a seat's place in seat-id order (a number compares faster than text). */
function compare(key, now, since, rank = null) {
  const text = (a, b) => COLLATOR.compare(a || "", b || "");
  const bySeat = rank
    ? (a, b) => (rank.get(a.seat) ?? 0) - (rank.get(b.seat) ?? 0) || COLLATOR.compare(a.seat, b.seat)
    : (a, b) => COLLATOR.compare(a.seat, b.seat);
  const age = (seat) => {
    const start = since(seat);
    return start === null || start === undefined ? -1 : now - start;
  };
  switch (key) {
    case "level":
      // Most severe first; the longest in that state first; then by seat.
      return (a, b) =>
        RANK[levelOf(a)] - RANK[levelOf(b)] || age(b) - age(a) || bySeat(a, b);
    case "time":
      return (a, b) => age(b) - age(a) || bySeat(a, b);
    case "state":
      return (a, b) => text(stateText(a), stateText(b)) || bySeat(a, b);
    case "agent":
    case "team":
      return (a, b) => text(a[key], b[key]) || bySeat(a, b);
    default:
      return bySeat;
  }
}

function levelBadge(seat) {
  const level = levelOf(seat);
  return h(
    "span",
    { class: `level level-${level}` },
    h("span", { class: "mark", "aria-hidden": "true" }, LEVEL_MARK[level]),
    ` ${LEVEL_TEXT[level]}`,
  );
}

function reasonsText(seat) {
  return (seat.reasons || []).map(reasonText).join(", ");
}

export function floorPage(main, me) {
  document.body.classList.add("page-floor");
  document.title = `Floor ${me.site} · seatbox`;
  const state = new FloorState();
  const views = new Map(); // seat id -> {tile, row, time: [els]}
  let sort = { key: param("sort") || "level", dir: param("dir") === "desc" ? -1 : 1 };
  let team = param("team") || "";

  const live = h("p", { class: "visually-hidden", "aria-live": "assertive", id: "announce" });
  const lastAlert = h("p", { class: "last-alert", id: "last-alert" });
  const alerts = new Alerts((text) => {
    fill(live, text);
    fill(lastAlert, `${new Date().toLocaleTimeString()}: ${text}`);
  });
  const status = statusBadge();

  const teamSelect = h("select", { id: "team-filter" });
  teamSelect.addEventListener("change", () => {
    team = teamSelect.value;
    setParams({ team });
    render(false);
  });
  const sortSelect = h(
    "select",
    { id: "sort" },
    COLUMNS.map((c) =>
      h("option", { value: c.key }, c.key === "level" ? "Severity" : c.title),
    ),
  );
  sortSelect.value = sort.key;
  sortSelect.addEventListener("change", () => setSort(sortSelect.value, 1));

  const totals = h("dl", { class: "totals", id: "totals", "aria-label": "Totals" });
  const map = h("div", { class: "map", id: "map" });
  const plan = h("div", { class: "plan-area" });
  const offPlan = h("div", { class: "grid" });
  const offPlanSection = h(
    "section",
    { class: "off-plan", hidden: true, "aria-labelledby": "off-plan-title" },
    h("h3", { id: "off-plan-title" }, "Not on the floor plan"),
    offPlan,
  );
  const headRow = h("tr");
  const tbody = h("tbody");
  const table = h("table", { class: "seats", id: "seat-list" }, h("thead", {}, headRow), tbody);
  const empty = h("p", { class: "empty", hidden: true }, "No seats to show.");
  const more = h("p", { class: "note", id: "list-more" });

  fill(
    main,
    h(
      "div",
      { class: "toolbar" },
      h("label", { for: "team-filter" }, "Team "),
      teamSelect,
      h("label", { for: "sort" }, "Sort by "),
      sortSelect,
      alerts.toggles(),
      status.badge,
    ),
    totals,
    lastAlert,
    live,
    h(
      "section",
      { class: "floor-map", "aria-labelledby": "map-title" },
      h("h2", { id: "map-title" }, "Floor map"),
      map,
      offPlanSection,
    ),
    h(
      "section",
      { class: "floor-list", "aria-labelledby": "list-title" },
      h("h2", { id: "list-title" }, "Seats"),
      table,
      more,
      empty,
    ),
  );

  function setSort(key, dir) {
    sort = { key, dir };
    sortSelect.value = key;
    setParams({ sort: key === "level" ? "" : key, dir: dir === -1 ? "desc" : "" });
    const focused = document.activeElement && document.activeElement.dataset.sort;
    header();
    if (focused) headRow.querySelector(`[data-sort="${focused}"]`)?.focus();
    render(false);
  }

  function header() {
    fill(
      headRow,
      COLUMNS.map((column) => {
        const active = sort.key === column.key;
        const button = h(
          "button",
          { type: "button", class: "sort", "data-sort": column.key },
          column.title,
          active ? (sort.dir === 1 ? " ▲" : " ▼") : "",
        );
        button.addEventListener("click", () =>
          setSort(column.key, active ? -sort.dir : 1),
        );
        return h(
          "th",
          {
            scope: "col",
            "aria-sort": active ? (sort.dir === 1 ? "ascending" : "descending") : null,
          },
          button,
        );
      }),
    );
  }

  // Time in state ticks only where it can be seen: a site of thousands of seats would
  // otherwise rewrite thousands of cells every second.
  const seen = new IntersectionObserver((entries) => {
    for (const entry of entries) {
      const v = views.get(entry.target.dataset.seat);
      if (!v) continue;
      if (entry.target === v.tile) v.tileSeen = entry.isIntersecting;
      else v.rowSeen = entry.isIntersecting;
      if (entry.isIntersecting) tickOne(v, state.now());
    }
  });

  function view(id) {
    let v = views.get(id);
    if (!v) {
      const href = `/seat/${encodeURIComponent(id)}`;
      v = {
        tile: h("a", { class: "seat", href, "data-seat": id }),
        row: h("tr", { "data-seat": id }),
        times: [],
        tileSeen: false,
        rowSeen: false,
      };
      views.set(id, v);
      seen.observe(v.row);
    }
    return v;
  }

  function forget(id) {
    const v = views.get(id);
    if (!v) return;
    seen.unobserve(v.tile);
    seen.unobserve(v.row);
    views.delete(id);
  }

  function draw(seat) {
    const v = view(seat.seat);
    const level = levelOf(seat);
    const reasons = reasonsText(seat);
    const tileTime = h("span", { class: "time" });
    const rowTime = h("td", { class: "time" });
    v.times = [tileTime, rowTime];
    v.since = sinceOf(seat);
    const flashing = v.tile.classList.contains("flash"); // a running alert survives a redraw
    const unplaced = seat.in_layout === false ? " unplaced" : "";
    v.tile.className = `seat level-${level}${unplaced}${compact ? " dot" : ""}`;
    v.tile.classList.toggle("flash", flashing);
    v.tile.dataset.level = level;
    v.tile.title = `${seat.label || seat.seat}: ${LEVEL_TEXT[level]}${reasons ? ` (${reasons})` : ""}`;
    if (compact) {
      // A big floor: one small square per seat, its level as a shape; the words are its
      // accessible name and tooltip, and the list below.
      v.tile.setAttribute("aria-label", v.tile.title);
      v.tile.textContent = LEVEL_MARK[level];
      v.times[0] = null;
      seen.unobserve(v.tile);
    } else {
      v.tile.removeAttribute("aria-label");
      seen.observe(v.tile);
      fill(
      v.tile,
      h("span", { class: "top" }, h("span", { class: "label" }, seat.label || seat.seat), tileTime),
      h("span", { class: "state" }, seat.agent ? `${seat.agent} · ` : "", stateText(seat)),
      h("span", { class: "why" }, levelBadge(seat)),
      reasons ? h("span", { class: "reasons" }, reasons) : null,
      seat.in_layout === false ? h("span", { class: "note" }, "not in layout") : null,
      );
    }
    v.row.className = `level-${level}${flashing ? " flash" : ""}`;
    v.row.dataset.level = level;
    fill(
      v.row,
      h(
        "th",
        { scope: "row" },
        h("a", { href: `/seat/${encodeURIComponent(seat.seat)}` }, seat.label || seat.seat),
        seat.in_layout === false ? h("span", { class: "note" }, " (not in layout)") : null,
      ),
      h("td", {}, seat.agent || "—"),
      h("td", {}, seat.team || "—"),
      h("td", { class: "state" }, stateText(seat)),
      rowTime,
      h("td", { class: "level-cell" }, levelBadge(seat), reasons ? h("span", { class: "reasons" }, ` ${reasons}`) : null),
    );
  }

  function tickOne(v, now) {
    const text = v.since === null || v.since === undefined ? "" : duration((now - v.since) / 1000);
    const [tileTime, rowTime] = v.times;
    if (v.tileSeen && tileTime && tileTime.textContent !== text) tileTime.textContent = text;
    if (v.rowSeen && rowTime && rowTime.textContent !== text) rowTime.textContent = text;
  }

  function tick() {
    const now = state.now();
    for (const v of views.values()) if (v.tileSeen || v.rowSeen) tickOne(v, now);
  }

  function teamsChoice() {
    const names = new Set(me.teams || []);
    for (const seat of state.seats.values()) if (seat.team) names.add(seat.team);
    for (const agg of state.teams) if (agg.team) names.add(agg.team);
    const sorted = [...names].sort();
    const current = [...teamSelect.options].map((o) => o.value).join("\n");
    const wanted = ["", ...sorted].join("\n");
    if (current !== wanted)
      fill(
        teamSelect,
        h("option", { value: "" }, "All teams"),
        sorted.map((name) => h("option", { value: name }, name)),
      );
    teamSelect.value = sorted.includes(team) ? team : "";
  }

  function drawTotals() {
    const agg = team ? state.teams.find((t) => t.team === team) || null : state.totals;
    const item = (label, value) => h("div", {}, h("dt", {}, label), h("dd", {}, count(value)));
    if (!agg) {
      fill(totals);
      return;
    }
    fill(
      totals,
      item("Seats", agg.seats),
      item("Online", agg.online),
      item("On call", agg.on_call),
      item("Ringing", agg.ringing),
      item("On hold", agg.on_hold),
      item("Away", agg.away),
      item("Violations", agg.violations),
      agg.suppressed ? h("p", { class: "note" }, "Group too small: counts not shown.") : null,
    );
  }

  function placeMap(seats) {
    const placed = seats.filter((s) => Number.isFinite(s.x) && Number.isFinite(s.y));
    const unplaced = seats.filter((s) => !(Number.isFinite(s.x) && Number.isFinite(s.y)));
    if (!placed.length) {
      map.className = "grid";
      fill(map, seats.map((s) => view(s.seat).tile));
      for (const s of seats) view(s.seat).tile.style.left = view(s.seat).tile.style.top = "";
      offPlanSection.hidden = true;
      return;
    }
    // Positions are grid units of the layout: one unit is a tile and a gap; the plan scrolls
    // when the floor is wider than the screen.
    const x0 = Math.min(...placed.map((s) => s.x));
    const y0 = Math.min(...placed.map((s) => s.y));
    const spanX = Math.max(...placed.map((s) => s.x)) - x0;
    const spanY = Math.max(...placed.map((s) => s.y)) - y0;
    map.className = "map plan";
    map.style.paddingBottom = "";
    plan.style.width = `calc(${spanX} * var(--unit-x) + var(--tile-w))`;
    plan.style.height = `calc(${spanY} * var(--unit-y) + var(--tile-h))`;
    fill(
      plan,
      placed.map((s) => {
        const tile = view(s.seat).tile;
        tile.style.left = `calc(${s.x - x0} * var(--unit-x))`;
        tile.style.top = `calc(${s.y - y0} * var(--unit-y))`;
        return tile;
      }),
    );
    fill(map, plan);
    offPlanSection.hidden = unplaced.length === 0;
    fill(
      offPlan,
      unplaced.map((s) => {
        const tile = view(s.seat).tile;
        tile.style.left = tile.style.top = "";
        return tile;
      }),
    );
  }

  let placedFor = null; // the team filter the map was last placed for
  let seatRank = new Map(); // seat id -> place in seat-id order (the sort's tie-break)
  let compact = false; // a map of small squares (more than COMPACT_OVER seats shown)
  let listed = []; // seat ids in list order, as last drawn

  function render(changedOnly, changed = null) {
    // A seat that came, went, moved or changed team re-places the map; others only redraw.
    let moved = !changedOnly || placedFor !== team;
    if (changed)
      for (const [id, { before, seat }] of changed) {
        if (!seat || !before || seat.x !== before.x || seat.y !== before.y || seat.team !== before.team)
          moved = true;
        if (seat) draw(seat);
        else forget(id);
      }
    else for (const seat of state.seats.values()) draw(seat);
    teamsChoice();
    drawTotals();
    const shown = [];
    for (const seat of state.seats.values()) if (!team || seat.team === team) shown.push(seat);
    if (moved) {
      placedFor = team;
      if (compact !== shown.length > COMPACT_OVER) {
        compact = shown.length > COMPACT_OVER;
        for (const seat of state.seats.values()) draw(seat);
      }
      const bySeat = [...shown].sort(compare("seat", 0, () => null));
      seatRank = new Map(bySeat.map((seat, i) => [seat.seat, i]));
      placeMap(bySeat);
      map.classList.toggle("compact", compact);
    }
    const since = (seat) => views.get(seat.seat)?.since ?? null;
    const order = compare(sort.key, state.now(), since, seatRank);
    shown.sort((a, b) => sort.dir * order(a, b));
    // The list shows the first LIST_MAX seats in its order (the most severe, by default); the
    // map shows them all. Rows move only when the order changed.
    const ids = shown.slice(0, LIST_MAX).map((s) => s.seat);
    if (ids.length !== listed.length || ids.some((id, i) => id !== listed[i])) {
      tbody.replaceChildren(...ids.map((id) => view(id).row));
      listed = ids;
    }
    fill(
      more,
      shown.length > LIST_MAX
        ? `The first ${LIST_MAX} of ${shown.length} seats in this order; choose a team to see the others.`
        : "",
    );
    empty.hidden = shown.length > 0;
    tick();
  }

  function alertNew(changed) {
    for (const { before, seat } of changed.values())
      if (
        seat &&
        (!team || seat.team === team) && // only the seats the filter shows
        levelOf(seat) === "violation" &&
        (!before || levelOf(before) !== "violation")
      ) {
        const v = views.get(seat.seat);
        alerts.violation(seat, v ? [v.tile, v.row] : []);
      }
  }

  header();
  const stream = new FloorStream({
    snapshot: (data) => {
      const { changed, first } = state.snapshot(data);
      render(false);
      if (!first) alertNew(changed);
    },
    diff: (data) => {
      const { changed } = state.diff(data);
      render(true, changed);
      alertNew(changed);
    },
    status: status.set,
  });
  stream.open();
  window.setInterval(tick, 1000);
  window.addEventListener("pagehide", () => stream.close());
}

// ----- the wallboard: aggregates only, large type -----

export function wallboardPage(main, me) {
  document.body.classList.add("page-wallboard");
  document.title = `Wallboard ${me.site} · seatbox`;
  const state = new FloorState();
  const status = statusBadge();
  const now = h("span", { class: "clock", id: "wall-clock" });
  const tiles = h("div", { class: "wall-totals", id: "wall-totals" });
  const teams = h("tbody");
  const table = h(
    "table",
    { class: "wall-teams", id: "wall-teams" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ["Team", "Online", "On call", "Ringing", "On hold", "Away", "Violations", "Longest hold"].map(
          (title) => h("th", { scope: "col" }, title),
        ),
      ),
    ),
    teams,
  );
  fill(
    main,
    h("div", { class: "wall-head" }, h("h1", {}, `Floor ${me.site}`), now, status.badge),
    tiles,
    table,
  );

  const tile = (label, value, warn = false) =>
    h(
      "div",
      { class: `wall-tile${warn ? " alarm" : ""}` },
      h("span", { class: "value" }, value),
      h("span", { class: "name" }, label),
    );
  const seconds = (value) => (value === null || value === undefined ? "—" : duration(value));

  function render() {
    const t = state.totals || {};
    fill(
      tiles,
      tile("Online", `${count(t.online)} / ${count(t.seats)}`),
      tile("On call", count(t.on_call)),
      tile("Ringing", count(t.ringing)),
      tile("On hold", count(t.on_hold)),
      tile("Away", count(t.away)),
      tile("Violations", count(t.violations), (t.violations || 0) > 0),
      tile("Longest hold", seconds(t.longest_hold_s)),
      tile("Longest ring", seconds(t.longest_ring_s)),
    );
    fill(
      teams,
      state.teams.map((agg) =>
        h(
          "tr",
          { class: agg.violations ? "alarm" : null },
          h("th", { scope: "row" }, agg.team || "(no team)", agg.suppressed ? h("span", { class: "note" }, " (group too small)") : null),
          [agg.online, agg.on_call, agg.ringing, agg.on_hold, agg.away, agg.violations].map((v) =>
            h("td", {}, count(v)),
          ),
          h("td", {}, seconds(agg.longest_hold_s)),
        ),
      ),
    );
  }

  const tickClock = () => fill(now, clock(new Date(state.now()).toISOString(), me.timezone));
  const stream = new FloorStream({
    snapshot: (data) => {
      state.snapshot(data);
      render();
    },
    diff: (data) => {
      state.diff(data);
      render();
    },
    status: status.set,
  });
  stream.open();
  tickClock();
  window.setInterval(tickClock, 1000);
  window.addEventListener("pagehide", () => stream.close());
}
