// The page's only way to the server: the JSON API of docs/floor-api.md, same origin, with the
// session cookie; writes carry the CSRF token from /api/v1/me or the login.

export class ApiError extends Error {
  constructor(status, body, retryAfter = null) {
    const text = (body && body.error) || `the server answered ${status}`;
    super(text);
    this.status = status;
    this.field = (body && body.field) || null;
    this.retryAfter = retryAfter;
  }
}

let csrf = null;

export function setCsrf(token) {
  csrf = token || null;
}

async function body(response) {
  const type = response.headers.get("content-type") || "";
  if (type.includes("application/json")) {
    try {
      return await response.json();
    } catch {
      return null;
    }
  }
  return null;
}

/** JSON from `path`; ApiError for any status but 2xx (401 included: the caller decides). */
export async function request(path, { method = "GET", json = undefined } = {}) {
  const headers = { Accept: "application/json" };
  if (json !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && csrf) headers["X-CSRF-Token"] = csrf;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      credentials: "same-origin",
      body: json === undefined ? undefined : JSON.stringify(json),
    });
  } catch {
    throw new ApiError(0, { error: "the floor service cannot be reached" });
  }
  if (response.status === 204) return null;
  const data = await body(response);
  if (!response.ok) {
    const retry = Number(response.headers.get("retry-after"));
    throw new ApiError(response.status, data, Number.isFinite(retry) && retry > 0 ? retry : null);
  }
  return data;
}

export const api = {
  me: () => request("/api/v1/me"),
  login: (username, password) =>
    request("/api/v1/login", { method: "POST", json: { username, password } }),
  logout: () => request("/api/v1/logout", { method: "POST" }),
  floor: () => request("/api/v1/floor"),
  timeline: (seat, date) =>
    request(`/api/v1/seats/${encodeURIComponent(seat)}/timeline?date=${encodeURIComponent(date)}`),
  report: (date, team) => request(reportUrl(date, team, "json")),
};

export function reportUrl(date, team, format, table = "rows") {
  const query = new URLSearchParams({ date, format });
  if (team) query.set("team", team);
  if (format === "csv" && table !== "rows") query.set("table", table);
  return `/api/v1/reports/daily?${query}`;
}

/** Send the browser to the login page, coming back here afterwards. */
export function toLogin() {
  const here = window.location.pathname + window.location.search;
  const next = here.startsWith("/login") ? "/" : here;
  window.location.assign(`/login?next=${encodeURIComponent(next)}`);
}
