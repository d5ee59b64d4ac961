// Small progressive enhancements: forms post to the API with the session cookie, and
// the live view listens to server-sent events (no polling from the browser).
"use strict";

async function api(method, url, body) {
  const options = { method, headers: {}, credentials: "same-origin" };
  if (body instanceof FormData) {
    options.body = body;
  } else if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(url, options);
  const data = response.status === 204 ? {} : await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => (
  { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));

function show(id, message) {
  const el = document.getElementById(id);
  el.textContent = message;
  el.hidden = !message;
}

const login = document.getElementById("login");
if (login) {
  login.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api("POST", "/api/v1/auth/login", {
        username: login.username.value.trim(),
        password: login.password.value,
      });
      window.location.assign(login.dataset.next || "/console");
    } catch (error) {
      show("login-error", error.message);
    }
  });
}

const signOut = document.getElementById("sign-out");
if (signOut) {
  signOut.addEventListener("click", async () => {
    await api("POST", "/api/v1/auth/logout").catch(() => {});
    window.location.assign("/console/login");
  });
}

// Record in the browser (MediaRecorder): "record and broadcast anytime, anywhere".
let recording = null;
const recordButton = document.getElementById("record");
if (recordButton) {
  const stopButton = document.getElementById("stop-recording");
  const status = document.getElementById("record-status");
  const box = recordButton.parentElement;
  let recorder = null;
  recordButton.addEventListener("click", async () => {
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
      const chunks = [];
      recorder = new MediaRecorder(stream);
      recorder.addEventListener("dataavailable", (e) => chunks.push(e.data));
      recorder.addEventListener("stop", () => {
        stream.getTracks().forEach((t) => t.stop());
        recording = new Blob(chunks, { type: recorder.mimeType || "audio/webm" });
        const audio = document.getElementById("recorded");
        audio.src = URL.createObjectURL(recording);
        audio.hidden = false;
        status.textContent = box.dataset.recorded;
      });
      recorder.start();
      status.textContent = box.dataset.recording;
      recordButton.disabled = true;
      stopButton.disabled = false;
    } catch (error) {
      status.textContent = error.message;
    }
  });
  stopButton.addEventListener("click", () => {
    if (recorder && recorder.state === "recording") recorder.stop();
    stopButton.disabled = true;
    recordButton.disabled = false;
  });
}

const emergency = document.getElementById("emergency");
if (emergency) {
  const chosen = () => [...emergency.querySelectorAll("input[name=areas]:checked")].map((c) => c.value);
  emergency.querySelector("#review").addEventListener("click", async () => {
    show("emergency-error", "");
    try {
      const reach = await api("POST", "/api/v1/broadcasts/reach", { areas: chosen() });
      const text = document.getElementById("summary-text");
      text.textContent = text.dataset.template
        .replace("%(speakers)s", reach.speakers.toLocaleString(document.documentElement.lang))
        .replace("%(eboards)s", reach.eboards.toLocaleString(document.documentElement.lang))
        .replace("%(communes)s", reach.communes.toLocaleString(document.documentElement.lang));
      document.getElementById("summary").hidden = false;
      emergency.querySelector("button[type=submit]").focus();
    } catch (error) {
      show("emergency-error", error.message);
    }
  });
  emergency.addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = emergency.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const body = {
        title: emergency.title.value.trim(),
        class: "emergency",
        areas: chosen(),
        expires_at: new Date(Date.now() + Number(emergency.expires.value) * 60000).toISOString(),
      };
      const text = emergency.text.value.trim();
      if (text) body.text = text;
      if (emergency.bulletin && emergency.bulletin.value) body.bulletin_id = emergency.bulletin.value;
      const file = emergency.audio.files[0];
      if (file || recording) {
        const form = new FormData();
        if (file) form.append("file", file);
        else form.append("file", recording, "recording.webm");
        body.media_sha256 = (await api("POST", "/api/v1/media", form)).sha256;
      }
      const sent = await api("POST", "/api/v1/broadcasts", body);
      window.location.assign(`/console/broadcasts/${sent.id}`);
    } catch (error) {
      button.disabled = false;
      show("emergency-error", error.message);
    }
  });
}

const live = document.getElementById("live");
if (live) {
  const id = live.dataset.broadcast;
  const lang = document.documentElement.lang === "vi" ? "vi-VN" : "en-GB";
  const number = (n) => Number(n || 0).toLocaleString(lang);
  const status = document.getElementById("status");
  const offline = esc(status.dataset.offline || "offline");
  const source = new EventSource(`/api/v1/broadcasts/${id}/events`);
  source.addEventListener("progress", (event) => {
    const data = JSON.parse(event.data);
    document.getElementById("confirmed").textContent = number(data.confirmed);
    document.getElementById("total").textContent = number(data.total);
    live.querySelectorAll("[data-state]").forEach((el) => {
      el.textContent = number(data.counts[el.dataset.state]);
    });
    const rows = data.areas.map((a) =>
      `<tr><th scope="row">${esc(a.area_name)}</th><td>${number(a.confirmed)}</td><td>${number(a.total)}</td></tr>`);
    document.getElementById("areas").innerHTML = rows.join("");
    document.getElementById("silent-total").textContent = number(data.unconfirmed_total);
    document.getElementById("silent").innerHTML = data.unconfirmed
      .map((c) => `<li>${esc(c.cluster)}${c.online ? "" : ` <span title="${offline}" aria-label="${offline}">⚠</span>`}</li>`)
      .join("");
  });
  source.addEventListener("done", () => {
    status.textContent = status.dataset.done || "✓";
    source.close();
  });
  document.getElementById("cancel").addEventListener("click", async (event) => {
    event.target.disabled = true;
    await api("POST", `/api/v1/broadcasts/${id}/cancel`).catch((error) => {
      event.target.disabled = false;
      status.textContent = error.message;
    });
  });
}

const operate = document.getElementById("operate");
if (operate) {
  const result = document.getElementById("operate-result");
  operate.querySelectorAll("button[data-kind]").forEach((button) => {
    button.addEventListener("click", async () => {
      const kind = button.dataset.kind;
      const params = {};
      if (kind === "set_volume") params.volume = Number(operate.volume.value);
      if (kind === "amplifier") params.on = button.dataset.on === "true";
      if (kind === "test_tone") params.seconds = 3;
      result.textContent = "…";
      try {
        const op = await api("POST", "/api/v1/operations", {
          kind, params, clusters: [operate.dataset.cluster], expires_in_s: 120,
        });
        // One person waiting on one answer: a short poll, not a storm.
        for (let i = 0; i < 120; i += 1) {
          const now = await api("GET", `/api/v1/operations/${op.id}`);
          const [answer] = now.results;
          if (answer && !["sent", "accepted"].includes(answer.state)) {
            const word = answer.state === "done" ? operate.dataset.done : operate.dataset.failed;
            result.textContent = `${kind}: ${word}${answer.reason ? ` (${answer.reason})` : ""}`;
            return;
          }
          await new Promise((r) => setTimeout(r, 1000));
        }
      } catch (error) {
        result.textContent = error.message;
      }
    });
  });
}

// The editorial queue and the inbox: one button, one API call, the answer in place.
document.querySelectorAll("li[data-bulletin] button[data-action]").forEach((button) => {
  button.addEventListener("click", async () => {
    const item = button.closest("li");
    const note = item.querySelector("input[name=note]");
    const result = item.querySelector(".result");
    try {
      const body = note && note.value.trim() ? { note: note.value.trim() } : {};
      const done = await api("POST", `/api/v1/bulletins/${item.dataset.bulletin}/${button.dataset.action}`, body);
      result.textContent = done.status;
      item.querySelectorAll("button").forEach((b) => { b.disabled = true; });
    } catch (error) {
      result.textContent = error.message;
    }
  });
});
document.querySelectorAll("li[data-item] button[data-action]").forEach((button) => {
  button.addEventListener("click", async () => {
    const item = button.closest("li");
    const result = item.querySelector(".result");
    try {
      const done = await api("POST", `/api/v1/inbox/${item.dataset.item}/${button.dataset.action}`, {});
      result.textContent = done.status;
      item.querySelector(".state").textContent = done.status;
      item.querySelectorAll("button").forEach((b) => { b.disabled = true; });
    } catch (error) {
      result.textContent = error.message;
    }
  });
});

const scheduleForm = document.getElementById("schedule-form");
if (scheduleForm) {
  const overlaps = document.getElementById("s-overlaps");
  const body = (accept) => {
    const data = {
      title: scheduleForm.title.value.trim(),
      bulletin_id: scheduleForm.bulletin_id.value,
      starts_local: scheduleForm.starts_local.value,
      plays: Number(scheduleForm.plays.value),
      areas: [scheduleForm.dataset.area],
      accept_conflicts: accept,
    };
    if (scheduleForm.rule.value) data.rule = scheduleForm.rule.value;
    return data;
  };
  const list = (found) => {
    overlaps.innerHTML = found.length
      ? found.map((o) => `<li>${esc(scheduleForm.dataset.conflicts)} «${esc(o.title)}» ` +
          `${esc(o.first_overlap_local.replace("T", " ").slice(0, 16))} ×${o.overlaps}</li>`).join("")
      : `<li>${esc(scheduleForm.dataset.clear)}</li>`;
  };
  document.getElementById("s-check").addEventListener("click", async () => {
    show("schedule-error", "");
    try {
      list(await api("POST", "/api/v1/schedules/check", body(false)));
    } catch (error) {
      show("schedule-error", error.message);
    }
  });
  scheduleForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    show("schedule-error", "");
    try {
      // Saved as checked: overlaps listed above are accepted knowingly (priority decides).
      await api("POST", "/api/v1/schedules", body(overlaps.children.length > 0));
      window.location.reload();
    } catch (error) {
      show("schedule-error", error.message);
    }
  });
}
