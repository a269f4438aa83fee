// seatbox floor: one page app. The server serves index.html at /, /wallboard, /seat/{seat},
// /report and /login; this module reads location.pathname and draws that page.

import { api, ApiError, setCsrf, toLogin } from "./api.js";
import { fill, h } from "./util.js";
import { floorPage, wallboardPage } from "./floor.js";
import { timelinePage } from "./timeline.js";
import { reportPage } from "./report.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");

/** Where a role starts after logging in (and where / sends an agent). */
function home(me) {
  if (me.role === "wallboard") return "/wallboard";
  if (me.role === "agent" && me.seat) return `/seat/${encodeURIComponent(me.seat)}`;
  return "/";
}

function safeNext(next) {
  // Only a path on this site: never "//evil.example" or "https://...".
  return next && /^\/(?!\/)/.test(next) && !next.startsWith("/login") ? next : null;
}

function loginPage() {
  document.body.classList.add("page-login");
  document.title = "Log in · seatbox floor";
  const message = h("p", { class: "error", role: "alert", id: "login-error" });
  const user = h("input", {
    id: "username",
    name: "username",
    autocomplete: "username",
    required: true,
    autofocus: true,
  });
  const password = h("input", {
    id: "password",
    name: "password",
    type: "password",
    autocomplete: "current-password",
    required: true,
  });
  const button = h("button", { type: "submit" }, "Log in");
  const form = h(
    "form",
    { class: "login", "aria-labelledby": "login-title" },
    h("h1", { id: "login-title" }, "seatbox floor"),
    h("label", { for: "username" }, "User name"),
    user,
    h("label", { for: "password" }, "Password"),
    password,
    button,
    message,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    fill(message);
    button.disabled = true;
    try {
      const me = await api.login(user.value, password.value);
      window.location.assign(safeNext(new URLSearchParams(location.search).get("next")) || home(me));
    } catch (error) {
      password.value = "";
      if (error.status === 401) fill(message, "Wrong user name or password.");
      else if (error.status === 429)
        fill(
          message,
          "Too many attempts. ",
          error.retryAfter ? `Try again in ${error.retryAfter} s.` : "Try again later.",
        );
      else fill(message, `Cannot log in: ${error.message}`);
      button.disabled = false;
      password.focus();
    }
  });
  fill(main, form);
}

function navigation(me, path) {
  const links = [];
  const link = (href, text, current) =>
    h("a", { href, "aria-current": current ? "page" : null }, text);
  if (me.role !== "wallboard" && me.role !== "agent") links.push(link("/", "Floor", path === "/"));
  if (me.role === "agent" && me.seat)
    links.push(link(`/seat/${encodeURIComponent(me.seat)}`, "My day", path.startsWith("/seat/")));
  if (me.role !== "agent") links.push(link("/wallboard", "Wallboard", path === "/wallboard"));
  if (me.role !== "wallboard") links.push(link("/report", "Daily report", path === "/report"));
  const logout = h("button", { type: "button", id: "logout", class: "link" }, "Log out");
  logout.addEventListener("click", async () => {
    try {
      await api.logout();
    } finally {
      window.location.assign("/login");
    }
  });
  fill(
    nav,
    h("span", { class: "brand" }, "seatbox floor"),
    h("span", { class: "site" }, me.site),
    ...links,
    h("span", { class: "spacer" }),
    h("span", { class: "who" }, `${me.user} (${me.role})`),
    logout,
  );
}

function notFound(path) {
  fill(main, h("section", { class: "message" }, h("h1", {}, "No such page"), h("p", {}, path)));
}

async function start() {
  const path = window.location.pathname.replace(/\/+$/, "") || "/";
  if (path === "/login") {
    loginPage();
    return;
  }
  let me;
  try {
    me = await api.me();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      toLogin();
      return;
    }
    fill(main, h("p", { class: "error", role: "alert" }, `Cannot start: ${error.message}`));
    return;
  }
  setCsrf(me.csrf);
  navigation(me, path);
  if (path === "/") {
    if (me.role === "wallboard" || (me.role === "agent" && me.seat)) {
      window.location.replace(home(me));
      return;
    }
    if (me.individual_views === false) {
      // Team-only mode (a site's [privacy] switch): no seat is shown to anyone; team figures.
      wallboardPage(main, me);
      main.prepend(
        h("p", { class: "message", role: "note" }, "This site runs in team-only mode: team figures only, no individual seats."),
      );
      return;
    }
    floorPage(main, me);
  } else if (path === "/wallboard") wallboardPage(main, me);
  else if (path === "/report") reportPage(main, me);
  else if (path.startsWith("/seat/")) {
    let seat;
    try {
      seat = decodeURIComponent(path.slice("/seat/".length));
    } catch {
      seat = "";
    }
    timelinePage(main, me, seat);
  } else notFound(path);
}

start();
