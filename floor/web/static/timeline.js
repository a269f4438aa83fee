// A seat's timeline for one local day of the site: /seat/{seat}?date=YYYY-MM-DD.

import { api, toLogin } from "./api.js";
import { clock, DATE_RE, fill, h, localDate, param, setParams } from "./util.js";

const EVENT_TEXT = {
  "call.ringing": "ringing",
  "call.answered": "answered",
  "call.hold": "put on hold",
  "call.resume": "taken off hold",
  "call.ended": "call ended",
  "hold.long": "hold past the warning limit",
  "hold.too_long": "hold too long",
  "answer.late": "answered late",
  "presence.away": "left the seat",
  "presence.present": "back at the seat",
  "away.long": "away past the first limit",
  "away.too_long": "away too long",
  "call.dead_air": "dead air on the call",
  "shift.absent": "absent",
  "shift.late": "late",
  "shift.early_leave": "left early",
};
// Conduct events a supervisor looks for first: marked in words and with a shape.
const VIOLATIONS = new Set([
  "hold.too_long",
  "away.too_long",
  "call.dead_air",
  "answer.late",
  "shift.absent",
  "shift.late",
  "shift.early_leave",
  "speech.too_loud",
  "floor.loud",
]);
const WARNINGS = new Set(["hold.long", "away.long"]);

function details(data) {
  if (!data || typeof data !== "object") return "";
  return Object.entries(data)
    .filter(([, value]) => value !== null && value !== undefined && value !== "")
    .map(([key, value]) => `${key}: ${typeof value === "object" ? JSON.stringify(value) : value}`)
    .join("; ");
}

export function refusal(me, error, what) {
  if (error.status === 403) {
    const own = me.role === "agent" ? " An agent sees only their own seat and day." : "";
    const role =
      me.role === "wallboard" || me.individual_views === false
        ? "Your role cannot see individual timelines."
        : `You cannot see ${what}.${own}`;
    return [h("h2", {}, "Not allowed"), h("p", {}, role), h("p", { class: "detail" }, `The server said: ${error.message}`)];
  }
  if (error.status === 404) return [h("h2", {}, "Not found"), h("p", {}, error.message)];
  if (error.status === 400)
    return [
      h("h2", {}, "Cannot show this"),
      h("p", {}, error.field ? `${error.field}: ${error.message}` : error.message),
    ];
  return [h("h2", {}, "Something went wrong"), h("p", {}, error.message)];
}

export function timelinePage(main, me, seat) {
  document.body.classList.add("page-seat");
  document.title = `Seat ${seat} · seatbox`;
  const today = localDate(me.timezone);
  const given = param("date");
  const picker = h("input", {
    type: "date",
    id: "date",
    value: given && DATE_RE.test(given) ? given : today,
    max: today,
  });
  const title = h("h1", { id: "seat-title" }, `Seat ${seat}`);
  const who = h("p", { class: "who" });
  const body = h("div", { class: "timeline", id: "timeline", "aria-live": "polite" });
  fill(
    main,
    h(
      "div",
      { class: "toolbar" },
      me.role === "agent" || me.role === "wallboard" ? null : h("a", { href: "/" }, "← Floor"),
      h("label", { for: "date" }, "Day "),
      picker,
    ),
    title,
    who,
    body,
  );

  async function load() {
    const date = picker.value;
    setParams({ date: date === today ? "" : date });
    fill(body, h("p", { class: "loading" }, "Loading…"));
    let data;
    try {
      data = await api.timeline(seat, date);
    } catch (error) {
      if (error.status === 401) return toLogin();
      fill(body, h("section", { class: "message refused", role: "alert" }, refusal(me, error, `seat ${seat}`)));
      return;
    }
    fill(
      who,
      [data.team ? `Team ${data.team}` : null, data.agent ? `Agent ${data.agent}` : null, data.date]
        .filter(Boolean)
        .join(" · "),
    );
    const entries = data.entries || [];
    if (!entries.length) {
      fill(body, h("p", { class: "empty" }, `No events on ${data.date}.`));
      return;
    }
    const counts = {};
    for (const entry of entries) counts[entry.type] = (counts[entry.type] || 0) + 1;
    const flagged = entries.filter((e) => VIOLATIONS.has(e.type)).length;
    fill(
      body,
      h(
        "p",
        { class: "summary" },
        `${entries.length} events`,
        flagged ? `, ${flagged} conduct violation${flagged === 1 ? "" : "s"}` : "",
      ),
      h(
        "table",
        { class: "entries" },
        h(
          "thead",
          {},
          h("tr", {}, ["Time", "Event", "Type", "Details"].map((t) => h("th", { scope: "col" }, t))),
        ),
        h(
          "tbody",
          {},
          entries.map((entry) => {
            const kind = VIOLATIONS.has(entry.type)
              ? "violation"
              : WARNINGS.has(entry.type)
                ? "warn"
                : "";
            return h(
              "tr",
              { class: kind ? `level-${kind}` : null, "data-type": entry.type },
              h("td", { class: "time" }, clock(entry.ts, me.timezone)),
              h(
                "td",
                {},
                kind ? h("span", { class: `level level-${kind}` }, kind === "violation" ? "■ violation" : "▲ warning") : null,
                kind ? " " : null,
                EVENT_TEXT[entry.type] || entry.type,
              ),
              h("td", { class: "type" }, h("code", {}, entry.type)),
              h("td", { class: "details" }, details(entry.data)),
            );
          }),
        ),
      ),
    );
  }

  picker.addEventListener("change", () => {
    if (DATE_RE.test(picker.value)) load();
  });
  load();
}
