// Shared by the employer report and the office statistics pages: login with the inbox's token, calls to
// /api/reports, and charts drawn as inline SVG (no library, no network: the machines are offline).
"use strict";
const TOKEN_KEY = "mirai-reports-token";
let token = sessionStorage.getItem(TOKEN_KEY);
const $ = (sel) => document.querySelector(sel);
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
const SUPPRESSED = "秘匿 / suppressed";
const LEVEL_COLOURS = { critical: "#b42318", high: "#e8590c", medium: "#f2b705", low: "#5b8def", none: "#2f9e44" };

async function api(path, options = {}) {
  const res = await fetch(path, { ...options, headers: { ...(token ? { Authorization: "Bearer " + token } : {}), ...(options.headers || {}) } });
  if (res.status === 401) { logout(); throw new Error("log in again"); }
  if (!res.ok) { const body = await res.json().catch(() => ({})); throw new Error(body.detail || res.statusText); }
  return res;
}

function logout() {
  if (token) fetch("/api/reports/logout", { method: "POST", headers: { Authorization: "Bearer " + token } }).catch(() => {});
  token = null; sessionStorage.removeItem(TOKEN_KEY);
  $("#app").hidden = true; $("#login").hidden = false; $("#logout").hidden = true; $("#who").textContent = "";
}

// Log in (or reuse the stored token), then call start(me).
function setupLogin(start) {
  $("#logout").addEventListener("click", logout);
  $("#login").addEventListener("submit", async (e) => {
    e.preventDefault();
    $("#login-error").textContent = "";
    const res = await fetch("/api/inbox/login", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ name: $("#name").value, password: $("#password").value }) });
    if (!res.ok) { $("#login-error").textContent = "ログインできません / Wrong name or password"; return; }
    token = (await res.json()).token; sessionStorage.setItem(TOKEN_KEY, token); begin();
  });
  async function begin() {
    try {
      const me = await (await api("/api/reports/me")).json();
      $("#who").textContent = `${me.name} (${me.role}${me.employer_code ? " " + me.employer_code : ""})`;
      $("#login").hidden = true; $("#app").hidden = false; $("#logout").hidden = false;
      await start(me);
    } catch (err) { $("#login").hidden = false; $("#login-error").textContent = err.message; }
  }
  if (token) begin(); else $("#login").hidden = false;
}

async function downloadCsv(path, filename) {
  const blob = await (await api(path)).blob();
  const a = document.createElement("a");
  a.href = URL.createObjectURL(blob); a.download = filename; a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

const pct = (share) => (share === null || share === undefined ? "" : (share * 100).toFixed(1) + "%");

// Horizontal bars. rows: [{label, value, text, suppressed}], value in [0, max].
// A row may carry a second, smaller line under its label (the English beside the Japanese).
function hbars(rows, { max = 1, width = 900, labelWidth = 420, colour = "#1d4ed8" } = {}) {
  const twoLines = rows.some((r) => r.sublabel);
  const rowH = twoLines ? 36 : 26, barW = width - labelWidth - 150, h = rows.length * rowH + 8;
  const parts = [`<svg class="chart" role="img" viewBox="0 0 ${width} ${h}" width="100%" xmlns="http://www.w3.org/2000/svg">`,
    `<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#eef0f3"/><line x1="0" y1="0" x2="0" y2="6" stroke="#98a2b3" stroke-width="2"/></pattern></defs>`];
  rows.forEach((r, i) => {
    const y = i * rowH + 4;
    parts.push(`<text x="${labelWidth - 8}" y="${y + 16}" text-anchor="end" class="lbl">${esc(r.label)}</text>`);
    if (r.sublabel) parts.push(`<text x="${labelWidth - 8}" y="${y + 30}" text-anchor="end" class="muted" font-size="10">${esc(r.sublabel)}</text>`);
    parts.push(`<rect x="${labelWidth}" y="${y + 3}" width="${barW}" height="${rowH - 8}" fill="#f2f4f7"/>`);
    if (r.suppressed) {
      parts.push(`<rect x="${labelWidth}" y="${y + 3}" width="${barW}" height="${rowH - 8}" fill="url(#hatch)"/>`);
      parts.push(`<text x="${labelWidth + barW + 6}" y="${y + 16}" class="val muted">${SUPPRESSED}</text>`);
    } else {
      const w = max > 0 ? Math.max(0, Math.min(1, r.value / max)) * barW : 0;
      parts.push(`<rect x="${labelWidth}" y="${y + 3}" width="${w.toFixed(1)}" height="${rowH - 8}" fill="${r.colour || colour}"/>`);
      parts.push(`<text x="${labelWidth + barW + 6}" y="${y + 16}" class="val">${esc(r.text)}</text>`);
    }
  });
  parts.push("</svg>");
  return parts.join("");
}

// Stacked columns. columns: [{label, total, segments: [{key, value, colour, label}], suppressedRest, hidden}].
function stackedColumns(columns, { width = 720, height = 260, legend = [] } = {}) {
  const left = 40, bottom = 40, top = 28, plotH = height - top - bottom;
  const max = Math.max(1, ...columns.map((c) => c.total || 0));
  const step = (width - left - 10) / Math.max(1, columns.length), barW = Math.min(60, step * 0.6);
  const parts = [`<svg class="chart" role="img" viewBox="0 0 ${width} ${height}" width="100%" xmlns="http://www.w3.org/2000/svg">`,
    `<defs><pattern id="hatch2" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#eef0f3"/><line x1="0" y1="0" x2="0" y2="6" stroke="#98a2b3" stroke-width="2"/></pattern></defs>`,
    `<line x1="${left}" y1="${top + plotH}" x2="${width - 5}" y2="${top + plotH}" stroke="#98a2b3"/>`,
    `<text x="${left - 6}" y="${top + 4}" text-anchor="end" class="val">${max}</text>`,
    `<text x="${left - 6}" y="${top + plotH}" text-anchor="end" class="val">0</text>`];
  legend.forEach((l, i) => {
    parts.push(`<rect x="${left + i * 110}" y="4" width="12" height="12" fill="${l.colour}"/><text x="${left + i * 110 + 16}" y="15" class="val">${esc(l.label)}</text>`);
  });
  columns.forEach((c, i) => {
    const x = left + i * step + (step - barW) / 2;
    parts.push(`<text x="${x + barW / 2}" y="${height - bottom + 16}" text-anchor="middle" class="val">${esc(c.label)}</text>`);
    if (c.hidden) {
      parts.push(`<rect x="${x}" y="${top}" width="${barW}" height="${plotH}" fill="url(#hatch2)" opacity=".6"/>`);
      parts.push(`<text x="${x + barW / 2}" y="${height - bottom + 31}" text-anchor="middle" class="val muted">秘匿</text>`);
      return;
    }
    let y = top + plotH;
    for (const s of [...c.segments, ...(c.suppressedRest ? [{ value: c.suppressedRest, colour: "url(#hatch2)", label: SUPPRESSED }] : [])]) {
      const h = (s.value / max) * plotH;
      y -= h;
      parts.push(`<rect x="${x}" y="${y.toFixed(1)}" width="${barW}" height="${h.toFixed(1)}" fill="${s.colour}"><title>${esc(s.label)}: ${s.value}</title></rect>`);
    }
    parts.push(`<text x="${x + barW / 2}" y="${(y - 4).toFixed(1)}" text-anchor="middle" class="val">${c.total}</text>`);
  });
  parts.push("</svg>");
  return parts.join("");
}
