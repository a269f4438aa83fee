// The daily report: /report?date=YYYY-MM-DD&team=T. Rows per seat (and agent), team
// aggregates, hold and answer time distributions; each table has its CSV.

import { api, reportUrl, toLogin } from "./api.js";
import { clock, DATE_RE, fill, h, localDate, param, setParams, toCsv } from "./util.js";
import { refusal } from "./timeline.js";

const ROW_COLUMNS = [
  ["seat", "Seat"],
  ["agent", "Agent"],
  ["team", "Team"],
  ["arrival", "Arrival"],
  ["late", "Late"],
  ["early_leave", "Early leave"],
  ["absent", "Absent"],
  ["away_count", "Away (times)"],
  ["away_minutes", "Away (min)"],
  ["calls", "Calls"],
  ["answered_late", "Answered late"],
  ["holds", "Holds"],
  ["holds_too_long", "Holds too long"],
  ["adherence_pct", "Adherence %"],
];
const TEAM_TITLES = {
  team: "Team",
  seats: "Seats",
  agents: "Agents",
  suppressed: "Suppressed",
};

function title(key) {
  return TEAM_TITLES[key] || key.replaceAll("_", " ").replace(/^./, (c) => c.toUpperCase());
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

/** Distributions: {name: {bucket: count}} tables, or plain figures (a share, a limit). */
function distributions(dist, site, date) {
  const parts = [];
  const figures = [];
  for (const [name, value] of Object.entries(dist || {})) {
    let pairs = null;
    if (Array.isArray(value))
      pairs = value.map((b) => [b.bucket ?? b.label ?? b.le ?? JSON.stringify(b), b.count ?? b.n ?? ""]);
    else if (value && typeof value === "object") {
      const entries = Object.entries(value);
      if (entries.every(([, v]) => typeof v === "number" || v === null)) pairs = entries;
      else {
        // {buckets: {...}, within_limit_pct: 93.2, ...}: a table and its figures.
        for (const [key, inner] of entries) {
          if (inner && typeof inner === "object" && !Array.isArray(inner))
            parts.push(distTable(`${name} ${key}`, Object.entries(inner), site, date));
          else if (Array.isArray(inner))
            parts.push(
              distTable(
                `${name} ${key}`,
                inner.map((b) => [b.bucket ?? b.label ?? b.le ?? JSON.stringify(b), b.count ?? b.n ?? ""]),
                site,
                date,
              ),
            );
          else figures.push([`${name} ${key}`, inner]);
        }
        continue;
      }
    } else {
      figures.push([name, value]);
      continue;
    }
    parts.push(distTable(name, pairs, site, date));
  }
  return [
    figures.length
      ? h(
          "dl",
          { class: "figures", id: "dist-figures" },
          figures.map(([k, v]) => h("div", {}, h("dt", {}, title(k)), h("dd", {}, show(v)))),
        )
      : null,
    ...parts,
  ];
}

let distCount = 0;
function distTable(name, pairs, site, date) {
  const id = `dist-${++distCount}`;
  const slug = name.replace(/[^a-z0-9]+/gi, "-").toLowerCase();
  const rows = pairs.map(([bucket, n]) => ({ bucket, count: n }));
  return table(
    id,
    title(name),
    [
      ["bucket", "Bucket"],
      ["count", "Count"],
    ],
    rows,
    null,
    blobLink(`seatbox-daily-${site}-${date}-${slug}.csv`, ["bucket", "count"], pairs, `${id}-csv`),
  );
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
    // One column per conduct event type seen, as the CSV's `events.<type>` columns.
    const types = [...new Set(rows.flatMap((r) => Object.keys(r.events || {})))].sort();
    const flat = rows.map((r) => {
      const out = { ...r };
      for (const type of types) out[`events.${type}`] = (r.events || {})[type] ?? 0;
      return out;
    });
    const rowHeader = [...ROW_COLUMNS, ...types.map((t) => [`events.${t}`, t])];
    const teamRows = report.teams || [];
    const teamKeys = [...new Set(teamRows.flatMap((t) => Object.keys(t)))];
    const teamHeader = teamKeys.map((k) => [k, title(k)]);
    const site = report.site || me.site;
    fill(
      body,
      h("h1", {}, `Daily report ${site}, ${report.date}${team ? `, team ${team}` : ""}`),
      table(
        "rows",
        me.role === "agent" ? "My day" : "Seats and agents",
        rowHeader,
        flat,
        me.timezone,
        h(
          "a",
          { href: reportUrl(report.date, team, "csv"), download: "", class: "csv", id: "rows-csv" },
          "Download CSV",
        ),
      ),
      me.role === "agent"
        ? null
        : table(
            "teams",
            "Teams",
            teamHeader,
            teamRows,
            me.timezone,
            blobLink(
              `seatbox-daily-${site}-${report.date}-teams.csv`,
              teamKeys,
              teamRows.map((t) => teamKeys.map((k) => raw(t[k]))),
              "teams-csv",
            ),
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
