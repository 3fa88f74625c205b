// The web chat: keeps a random id in local storage so that a worker resumes where they stopped.
(function () {
  const log = document.getElementById("log");
  const nav = document.getElementById("navigation");
  const form = document.getElementById("composer");
  const input = document.getElementById("input");
  const picker = document.getElementById("language");
  let language = null;
  let userId = localStorage.getItem("mirai-user");
  if (!userId) {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    userId = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    localStorage.setItem("mirai-user", userId);
  }

  function bubble(text, who, extraClass) {
    const div = document.createElement("div");
    div.className = "msg " + who + (extraClass ? " " + extraClass : "");
    div.textContent = text;
    log.appendChild(div);
    return div;
  }

  function disableOldOptions() {
    log.querySelectorAll(".options button").forEach((b) => (b.disabled = true));
  }

  function renderOptions(msg) {
    const box = document.createElement("div");
    box.className = "options";
    box.dataset.question = msg.question || "";
    if (msg.kind === "multiselect") {
      const chosen = new Set();
      msg.options.forEach((opt, i) => {
        const b = document.createElement("button");
        b.type = "button";
        b.dataset.option = opt.id;
        b.setAttribute("aria-pressed", "false");
        b.textContent = (i + 1) + ". " + opt.label;
        b.onclick = () => {
          if (opt.id === "none") { send({ kind: "choice", choice_ids: ["none"] }, opt.label); return; }
          if (chosen.has(opt.id)) chosen.delete(opt.id); else chosen.add(opt.id);
          b.setAttribute("aria-pressed", chosen.has(opt.id) ? "true" : "false");
        };
        box.appendChild(b);
      });
      const done = document.createElement("button");
      done.type = "button";
      done.className = "done";
      done.dataset.option = "done";
      done.textContent = msg.submit_label || "OK";
      done.onclick = () => {
        if (!chosen.size) return;
        const ids = msg.options.map((o) => o.id).filter((id) => chosen.has(id));
        const labels = msg.options.filter((o) => chosen.has(o.id)).map((o) => o.label);
        send({ kind: "choice", choice_ids: ids }, labels.join("\n"));
      };
      box.appendChild(done);
    } else {
      msg.options.forEach((opt) => {
        const b = document.createElement("button");
        b.type = "button";
        b.dataset.option = opt.id;
        b.textContent = opt.label;
        b.onclick = () => send({ kind: "choice", choice_ids: [opt.id] }, opt.label);
        box.appendChild(b);
      });
    }
    log.appendChild(box);
  }

  function render(messages, live) {
    messages.forEach((m) => {
      if (m.direction === "in") { bubble(m.text, "me"); return; }
      const cls = m.kind === "result" ? "result level-" + m.level : "";
      let shown = m.text;
      if (live && m.options && m.options.length) {
        // The numbered list is for text-only channels; here the options are buttons right below.
        const numbered = new Set(m.options.map((o, i) => (i + 1) + ". " + o.label));
        shown = m.text.split("\n").filter((line) => !numbered.has(line)).join("\n").replace(/\n{3,}/g, "\n\n").trim();
      }
      const div = bubble(shown, "bot", cls);
      if (m.question) div.dataset.question = m.question;
      if (m.kind === "result") div.dataset.level = m.level;
      if (live && m.options && m.options.length) renderOptions(m);
    });
    log.scrollTop = log.scrollHeight;
  }

  function renderNavigation(items) {
    nav.innerHTML = "";
    (items || []).forEach((item) => {
      const b = document.createElement("button");
      b.type = "button";
      b.dataset.command = item.id;
      b.textContent = item.label;
      b.onclick = () => send({ kind: "choice", choice_ids: [item.id] }, item.label);
      nav.appendChild(b);
    });
  }

  function setLanguage(lang) {
    language = lang;
    picker.value = lang;
    document.documentElement.lang = lang;
  }

  async function post(body) {
    const res = await fetch("/api/webchat/events", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(Object.assign({ user_id: userId, language: language }, body)),
    });
    if (!res.ok) throw new Error("HTTP " + res.status);
    return res.json();
  }

  async function send(body, shownText) {
    disableOldOptions();
    if (shownText) bubble(shownText, "me");
    try {
      const reply = await post(body);
      setLanguage(reply.language);
      render(reply.messages, true);
      renderNavigation(reply.navigation);
    } catch (e) {
      bubble("⚠ " + e.message, "bot");
    }
  }

  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = input.value;
    if (!text.trim()) return;
    input.value = "";
    send({ kind: "text", text: text }, text);
  });

  picker.addEventListener("change", () => {
    send({ kind: "choice", choice_ids: ["set_language:" + picker.value] }, null);
  });

  async function start() {
    const langs = await (await fetch("/api/webchat/languages")).json();
    langs.forEach((l) => {
      const o = document.createElement("option");
      o.value = l.id; o.textContent = l.label;
      picker.appendChild(o);
    });
    const guess = (navigator.language || "en").slice(0, 2);
    setLanguage(langs.some((l) => l.id === guess) ? guess : "en");
    const past = await (await fetch("/api/webchat/history?user_id=" + userId)).json();
    if (past.messages.length) render(past.messages, false);
    lastSeenId = past.messages.reduce((max, m) => Math.max(max, m.id || 0), 0);
    await send({ kind: "follow", language: language }, null);
    setInterval(pollForCounsellor, 4000);
  }

  // A counsellor's answers arrive on their own time, not as replies to what the worker just sent.
  let lastSeenId = 0;
  async function pollForCounsellor() {
    try {
      const res = await fetch("/api/webchat/history?user_id=" + userId + "&after_id=" + lastSeenId);
      if (!res.ok) return;
      const fresh = (await res.json()).messages;
      const pushed = fresh.filter((m) => m.direction === "out" && m.pushed);
      if (pushed.length) render(pushed, false);
      lastSeenId = fresh.reduce((max, m) => Math.max(max, m.id || 0), lastSeenId);
    } catch (e) { /* offline for a moment: the next poll catches up */ }
  }
  start();
})();
