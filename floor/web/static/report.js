// The daily report: /report?date=YYYY-MM-DD&team=T. Rows per seat (and agent), team
// aggregates, hold and answer time distributions; each table has its CSV.

import { api, reportUrl, toLogin } from "./api.js";
import { clock, DATE_RE, fill, h, localDate, param, setParams, toCsv } from "./util.js";
import { refusal } from "./timeline.js";

// Column titles; the columns themselves and their order are the server's (`columns`, the CSV's).
const TITLES = {
  seat: "Seat",
  agent: "Agent",
  team: "Team",
  arrival: "Arrival",
  late: "Late (min)",
  early_leave: "Early leave (min)",
  absent: "Absent",
  away_count: "Away (times)",
  away_minutes: "Away (min)",
  calls: "Calls",
  answered: "Answered",
  answered_late: "Answered late",
  holds: "Holds",
  holds_too_long: "Holds too long",
  scheduled_minutes: "Scheduled (min)",
  adherence_pct: "Adherence %",
  people: "People",
  seats: "Seats",
  suppressed: "Too small to show",
};
// In the CSV, not on the page: the seat's label and layout flag, its thresholds (an object).
const HIDDEN = new Set(["label", "in_layout", "thresholds"]);
const DEFAULT_COLUMNS = [
  "seat", "team", "agent", "arrival", "late", "early_leave", "absent", "away_count",
  "away_minutes", "calls", "answered", "answered_late", "holds", "holds_too_long",
  "scheduled_minutes", "adherence_pct",
];

function title(key) {
  if (TITLES[key]) return TITLES[key];
  if (key.startsWith("events.")) return key.slice("events.".length);
  return key.replaceAll("_", " ").replace(/^./, (c) => c.toUpperCase());
}

function show(value, timeZone) {
  if (value === null || value === undefined || value === "") return "—";
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : value.toFixed(1);
  if (typeof value === "string" && /^\d{4}-\d{2}-\d{2}T/.test(value)) return clock(value, timeZone);
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

function raw(value) {
  if (value === null || value === undefined) return "";
  return typeof value === "object" ? JSON.stringify(value) : value;
}

function blobLink(name, header, rows, id) {
  const url = URL.createObjectURL(new Blob([toCsv(header, rows)], { type: "text/csv" }));
  return h("a", { href: url, download: name, class: "csv", id }, "Download CSV");
}

function table(id, caption, header, rows, timeZone, link) {
  return h(
    "section",
    { class: "report-table", "aria-labelledby": `${id}-title` },
    h("div", { class: "table-head" }, h("h2", { id: `${id}-title` }, caption), link),
    rows.length
      ? h(
          "div",
          { class: "scroll" },
          h(
            "table",
            { id },
            h("thead", {}, h("tr", {}, header.map(([, t]) => h("th", { scope: "col" }, t)))),
            h(
              "tbody",
              {},
              rows.map((row) =>
                h(
                  "tr",
                  {},
                  header.map(([key], i) =>
                    h(i === 0 ? "th" : "td", i === 0 ? { scope: "row" } : {}, show(row[key], timeZone)),
                  ),
                ),
              ),
            ),
          ),
        )
      : h("p", { class: "empty" }, "Nothing to show."),
  );
}

function bucketName(bucket) {
  const from = bucket.from_s ?? 0;
  return bucket.to_s === null || bucket.to_s === undefined
    ? `${from} s or more`
    : `${from}–${bucket.to_s} s`;
}

/** One table per kind (answer, hold): a row per bucket and figure, a column per scope (the
 * site, then each team big enough to show). */
function distributionTable(kind, caption, figures, scopes, site, date) {
  const shown = scopes.filter(([, dist]) => dist && dist[kind]);
  if (!shown.length) return null;
  const header = [["name", kind === "answer" ? "Answer time" : "Hold time"]];
  for (const [name] of shown) header.push([name, name]);
  const rows = [];
  const buckets = shown[0][1][kind].buckets || [];
  buckets.forEach((bucket, i) => {
    const row = { name: bucketName(bucket) };
    for (const [name, dist] of shown) row[name] = (dist[kind].buckets || [])[i]?.count ?? null;
    rows.push(row);
  });
  for (const [key, label] of figures) {
    const row = { name: label };
    for (const [name, dist] of shown) row[name] = dist[kind][key] ?? null;
    rows.push(row);
  }
  const id = `dist-${kind}`;
  return table(
    id,
    caption,
    header,
    rows,
    null,
    blobLink(
      `seatbox-daily-${site}-${date}-${kind}-times.csv`,
      header.map(([key]) => (key === "name" ? "bucket" : key)),
      rows.map((row) => header.map(([key]) => raw(row[key]))),
      `${id}-csv`,
    ),
  );
}

function distributions(dist, site, date) {
  if (!dist) return [h("p", { class: "empty" }, "No distributions.")];
  const scopes = [];
  if (!dist.suppressed && (dist.answer || dist.hold)) scopes.push(["Site", dist]);
  for (const [team, inner] of Object.entries(dist.teams || {})) scopes.push([team, inner]);
  const out = [
    distributionTable(
      "answer",
      "Answer times (ring to answer)",
      [
        ["count", "Answered calls"],
        ["within_limit", "Answered within the limit"],
        ["within_limit_pct", "Share within the limit %"],
        ["mean_s", "Mean answer time (s)"],
      ],
      scopes,
      site,
      date,
    ),
    distributionTable(
      "hold",
      "Hold times",
      [
        ["count", "Holds"],
        ["over_warn", "Past the warning limit"],
        ["over_violation", "Past the violation limit"],
        ["longest_s", "Longest (s)"],
      ],
      scopes,
      site,
      date,
    ),
  ].filter(Boolean);
  if (dist.suppressed)
    out.unshift(h("p", { class: "note" }, "Groups too small to show are left out."));
  return out.length ? out : [h("p", { class: "empty" }, "Nothing to show.")];
}

export function reportPage(main, me) {
  document.body.classList.add("page-report");
  document.title = `Daily report ${me.site} · seatbox`;
  const today = localDate(me.timezone);
  const given = param("date");
  const picker = h("input", {
    type: "date",
    id: "date",
    value: given && DATE_RE.test(given) ? given : today,
    max: today,
  });
  const yesterday = h("button", { type: "button", id: "yesterday" }, "Yesterday");
  const teamSelect = h("select", { id: "team-filter" }, h("option", { value: "" }, "All my teams"));
  const known = new Set(me.teams || []);
  let team = param("team") || "";
  const body = h("div", { id: "report", "aria-live": "polite" });
  fill(
    main,
    h(
      "div",
      { class: "toolbar" },
      h("label", { for: "date" }, "Day "),
      picker,
      yesterday,
      h("label", { for: "team-filter" }, "Team "),
      teamSelect,
    ),
    body,
  );

  function teams() {
    const sorted = [...known].sort();
    fill(
      teamSelect,
      h("option", { value: "" }, me.role === "manager" ? "All teams" : "All my teams"),
      sorted.map((name) => h("option", { value: name }, name)),
    );
    teamSelect.value = sorted.includes(team) ? team : "";
  }

  async function load() {
    const date = picker.value;
    setParams({ date: date === today ? "" : date, team });
    fill(body, h("p", { class: "loading" }, "Loading…"));
    let report;
    try {
      report = await api.report(date, team);
    } catch (error) {
      if (error.status === 401) return toLogin();
      fill(
        body,
        h(
          "section",
          { class: "message refused", role: "alert" },
          error.status === 403
            ? [
                h("h2", {}, "Not allowed"),
                h("p", {}, "Your role cannot see the daily report's rows."),
                h("p", { class: "detail" }, `The server said: ${error.message}`),
              ]
            : refusal(me, error, "this report"),
        ),
      );
      return;
    }
    const rows = report.rows || [];
    for (const row of rows) if (row.team) known.add(row.team);
    for (const agg of report.teams || []) if (agg.team) known.add(agg.team);
    teams();
    // The server's columns (the CSV's), events as one column per type (`events.<type>`).
    const types = [...new Set(rows.flatMap((r) => Object.keys(r.events || {})))].sort();
    const flatten = (item) => {
      const out = { ...item };
      for (const type of types) out[`events.${type}`] = item.events ? (item.events[type] ?? 0) : null;
      return out;
    };
    const columns = (report.columns || DEFAULT_COLUMNS).filter(
      (c) => !HIDDEN.has(c) && !c.startsWith("events."),
    );
    const rowHeader = [...columns, ...types.map((t) => `events.${t}`)].map((c) => [c, title(c)]);
    const flat = rows.map(flatten);
    const teamRows = (report.teams || []).map(flatten);
    if (report.totals && teamRows.length > 1) teamRows.push({ ...flatten(report.totals), team: "All" });
    const teamKeys = [
      ...new Set((report.teams || []).flatMap((t) => Object.keys(t).filter((k) => k !== "events"))),
      ...types.map((t) => `events.${t}`),
    ];
    const teamHeader = teamKeys.map((k) => [k, k === "team" ? "Team" : title(k)]);
    const site = report.site || me.site;
    const csvLink = (which, id) =>
      h(
        "a",
        { href: reportUrl(report.date, team, "csv", which), download: "", class: "csv", id },
        "Download CSV",
      );
    fill(
      body,
      h("h1", {}, `Daily report ${site}, ${report.date}${team ? `, team ${team}` : ""}`),
      table(
        "rows",
        me.role === "agent" ? "My day" : "Seats and agents",
        rowHeader,
        flat,
        me.timezone,
        csvLink("rows", "rows-csv"),
      ),
      me.role === "agent"
        ? null
        : table(
            "teams",
            "Teams",
            teamHeader,
            teamRows,
            me.timezone,
            csvLink("teams", "teams-csv"),
          ),
      h(
        "section",
        { class: "distributions", "aria-labelledby": "dist-title" },
        h("h2", { id: "dist-title" }, "Hold and answer times"),
        distributions(report.distributions, site, report.date),
      ),
    );
  }

  picker.addEventListener("change", () => {
    if (DATE_RE.test(picker.value)) load();
  });
  yesterday.addEventListener("click", () => {
    picker.value = localDate(me.timezone, -1);
    load();
  });
  teamSelect.addEventListener("change", () => {
    team = teamSelect.value;
    load();
  });
  teams();
  load();
}
