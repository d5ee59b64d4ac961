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
  if (!response.ok) {
    const error = new Error(data.error || response.statusText);
    error.data = data; // e.g. the overlaps a 409 lists
    throw error;
  }
  return data;
}

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => (
  { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));

function show(id, message) {
  const el = document.getElementById(id);
  el.textContent = message;
  el.hidden = !message;
}

// Only a path of this console on this site: never a script URL or another site, whatever
// the link that brought the officer here said (the server checks it too).
function consolePath(next) {
  try {
    const url = new URL(next || "/console", window.location.origin);
    const ours = url.origin === window.location.origin && url.protocol.startsWith("http");
    if (ours && /^\/console(\/|$)/.test(url.pathname)) return url.pathname + url.search + url.hash;
  } catch (error) {
    // not a URL at all
  }
  return "/console";
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
      window.location.assign(consolePath(login.dataset.next));
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

// The chosen file, else the recording made here, uploaded: its sha256 (none: undefined).
async function uploadAudio(input) {
  const file = input.files[0];
  if (!file && !recording) return undefined;
  const form = new FormData();
  if (file) form.append("file", file);
  else form.append("file", recording, "recording.webm");
  return (await api("POST", "/api/v1/media", form)).sha256;
}

// The area chooser (templates/_where.html): the map and the list are one choice: a
// commune on the map is lit when it, or a district or province above it, is ticked;
// clicking a commune ticks or unticks it. Returns the codes chosen, when asked.
function areaChooser(form) {
  const boxes = [...form.querySelectorAll("input[name=areas]")];
  const communes = [...form.querySelectorAll("g.commune")];
  const light = () => {
    const paths = boxes.filter((c) => c.checked).map((c) => c.dataset.path);
    communes.forEach((g) => {
      g.setAttribute("aria-checked", String(paths.some((p) => g.dataset.path.startsWith(p))));
    });
  };
  const toggle = (g) => {
    const box = boxes.find((c) => c.value === g.dataset.code);
    if (!box) return;
    box.checked = !box.checked;
    light();
  };
  communes.forEach((g) => {
    g.addEventListener("click", () => toggle(g));
    g.addEventListener("keydown", (event) => {
      if (event.key === " " || event.key === "Enter") {
        event.preventDefault();
        toggle(g);
      }
    });
  });
  boxes.forEach((c) => c.addEventListener("change", light));
  return () => boxes.filter((c) => c.checked).map((c) => c.value);
}

const emergency = document.getElementById("emergency");
if (emergency) {
  const chosen = areaChooser(emergency);
  // The audio is uploaded at the review and staged on the clusters while the officer
  // reads the summary (docs/protocol.md 4.2): the send then finds it held. The same file
  // or recording is not uploaded twice; another one is (its sha256 is what plays).
  let reviewed = null;
  const reviewedAudio = async () => {
    const file = emergency.audio.files[0];
    const source = file || recording;
    if (!source) return undefined;
    if (reviewed && reviewed.source === source) return reviewed.sha256;
    const sha256 = await uploadAudio(emergency.audio);
    reviewed = { source, sha256 };
    return sha256;
  };
  // A standard warning brings its title (the officer may change it); the clusters hold
  // its clip, so nothing is staged at the review (docs/protocol.md 11.1).
  const warning = emergency.querySelector("select[name=warning]");
  if (warning) {
    warning.addEventListener("change", () => {
      const picked = warning.selectedOptions[0];
      if (picked && picked.value && !emergency.title.value.trim()) emergency.title.value = picked.dataset.title;
    });
  }
  emergency.querySelector("#review").addEventListener("click", async () => {
    show("emergency-error", "");
    try {
      const body = { areas: chosen() };
      const sha256 = await reviewedAudio();
      if (sha256) body.media_sha256 = sha256;
      if (warning && warning.value) body.warning = warning.value;
      else if (!sha256 && emergency.bulletin && emergency.bulletin.value) body.bulletin_id = emergency.bulletin.value;
      const reach = await api("POST", "/api/v1/broadcasts/reach", body);
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
      if (emergency.drill.checked) body.drill = true;
      if (emergency.bulletin && emergency.bulletin.value) body.bulletin_id = emergency.bulletin.value;
      if (warning && warning.value) body.warning = warning.value;
      const sha256 = await reviewedAudio();
      if (sha256) body.media_sha256 = sha256;
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

// Live voice: the microphone in 200 ms WebM/Opus chunks (MediaRecorder: every browser,
// phones included; no STUN/TURN on a closed network) over one WebSocket. A dropped
// connection is opened again with a new recorder; the server carries silence meanwhile.
const voice = document.getElementById("voice");
if (voice) {
  const chosen = areaChooser(voice);
  const statusEl = document.getElementById("voice-status");
  const goButton = document.getElementById("go-live");
  const endButton = document.getElementById("end-live");
  const lang = document.documentElement.lang === "vi" ? "vi-VN" : "en-GB";
  const number = (n) => Number(n || 0).toLocaleString(lang);
  let ws = null;
  let recorder = null;
  let ending = false;
  let session = null;
  let stream = null;
  let events = null;
  let timer = null;
  const say = (key) => { statusEl.textContent = statusEl.dataset[key]; };
  const connect = () => {
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    ws = new WebSocket(`${scheme}//${window.location.host}${session.audio_path}`);
    ws.onopen = () => {
      say("live");
      recorder = new MediaRecorder(stream, { mimeType: "audio/webm;codecs=opus" });
      recorder.ondataavailable = (event) => {
        if (event.data.size && ws.readyState === WebSocket.OPEN) ws.send(event.data);
      };
      recorder.onstop = () => {
        if (ending && ws.readyState === WebSocket.OPEN) ws.send("end");
      };
      recorder.start(200);
    };
    ws.onmessage = (event) => {
      // Finished here, or ended elsewhere (a cancel, the server): say why, and stay off.
      const elsewhere = !ending;
      ending = true;
      if (recorder && recorder.state !== "inactive") recorder.stop();
      const reason = JSON.parse(event.data).end_reason;
      statusEl.textContent = statusEl.dataset.ended + (elsewhere && reason ? `: ${reason}` : "");
      endButton.hidden = true;
      clearInterval(timer);
    };
    ws.onclose = (event) => {
      if (recorder && recorder.state !== "inactive") recorder.stop();
      if (ending || event.code === 4404) return; // over (4404: the session is gone)
      say("lost");
      setTimeout(connect, 1000);
    };
  };
  const meter = () => {
    const context = new AudioContext();
    const analyser = context.createAnalyser();
    context.createMediaStreamSource(stream).connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    const level = document.getElementById("level");
    const draw = () => {
      analyser.getFloatTimeDomainData(samples);
      level.value = Math.min(1, Math.sqrt(samples.reduce((s, x) => s + x * x, 0) / samples.length) * 4);
      if (!ending) requestAnimationFrame(draw);
    };
    draw();
  };
  const watch = () => {
    const offline = esc(document.getElementById("voice-silent").dataset.offline);
    events = new EventSource(`/api/v1/broadcasts/${session.broadcast_id}/events?unconfirmed_limit=200`);
    events.addEventListener("progress", (event) => {
      const data = JSON.parse(event.data);
      document.getElementById("voice-areas").innerHTML = data.areas.map((a) => {
        const playing = a.counts.playing || 0;
        return `<tr><th scope="row">${esc(a.area_name)}</th><td data-playing="${esc(a.area_code)}">${number(playing)}</td><td data-not-playing="${esc(a.area_code)}">${number(a.total - playing)}</td></tr>`;
      }).join("");
      const silent = data.unconfirmed;
      document.getElementById("voice-silent-total").textContent = number(data.unconfirmed_total);
      document.getElementById("voice-silent").innerHTML = silent
        .map((c) => `<li>${esc(c.cluster)}${c.online ? "" : ` <span title="${offline}" aria-label="${offline}">⚠</span>`}</li>`)
        .join("");
    });
  };
  goButton.addEventListener("click", async () => {
    show("voice-error", "");
    goButton.disabled = true;
    try {
      // No noise suppression: a siren or an alarm tone held to the microphone is the
      // message, and Chrome's suppressor faded a steady tone to nothing within seconds.
      stream = await navigator.mediaDevices.getUserMedia({
        audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: true },
      });
      session = await api("POST", "/api/v1/live", {
        title: voice.title.value.trim(),
        class: voice.class.value,
        areas: chosen(),
      });
    } catch (error) {
      goButton.disabled = false;
      show("voice-error", error.message);
      if (stream) stream.getTracks().forEach((t) => t.stop());
      return;
    }
    document.getElementById("on-air").hidden = false;
    goButton.hidden = true;
    endButton.hidden = false;
    voice.dataset.broadcast = session.broadcast_id;
    const started = Date.now();
    timer = setInterval(() => {
      const s = Math.floor((Date.now() - started) / 1000);
      document.getElementById("elapsed").textContent = `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
    }, 500);
    meter();
    watch();
    connect();
  });
  endButton.addEventListener("click", () => {
    ending = true;
    endButton.disabled = true;
    clearInterval(timer);
    if (recorder && recorder.state !== "inactive") recorder.stop(); // its last chunk, then "end"
    else api("POST", `/api/v1/live/${session.broadcast_id}/end`).then(() => say("ended"));
    if (stream) stream.getTracks().forEach((t) => t.stop());
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
  const save = document.getElementById("s-save");
  const saveLabel = save.textContent;
  const stopEditing = document.getElementById("s-new");
  const editing = () => scheduleForm.schedule_id.value;
  let accepted = false; // the overlaps shown were seen: save anyway (priority decides)
  const picked = () => [...scheduleForm.querySelectorAll("input[name=clusters]:checked")].map((c) => c.value);
  const onlySome = () => {
    const reach = scheduleForm.querySelector("input[name=reach]:checked");
    return reach !== null && reach.value === "clusters";
  };
  const body = () => {
    const data = {
      title: scheduleForm.title.value.trim(),
      starts_local: scheduleForm.starts_local.value,
      plays: Number(scheduleForm.plays.value),
      accept_conflicts: accepted,
    };
    if (onlySome()) {
      data.clusters = picked();
      data.areas = [];
    } else {
      data.areas = [scheduleForm.dataset.area];
      data.clusters = [];
    }
    if (editing()) {
      data.rule = scheduleForm.rule.value || null;
    } else {
      data.bulletin_id = scheduleForm.bulletin_id.value;
      if (scheduleForm.rule.value) data.rule = scheduleForm.rule.value;
    }
    return data;
  };
  const list = (found) => {
    overlaps.innerHTML = found.length
      ? found.map((o) => `<li>${esc(scheduleForm.dataset.conflicts)} «${esc(o.title)}» ` +
          `${esc(o.first_overlap_local.replace("T", " ").slice(0, 16))} ×${o.overlaps}</li>`).join("")
      : `<li>${esc(scheduleForm.dataset.clear)}</li>`;
    accepted = found.length > 0;
    save.textContent = accepted ? scheduleForm.dataset.saveAnyway : saveLabel;
  };
  const edited = () => [...scheduleForm.elements].forEach((el) => {
    if (el.name !== "schedule_id") el.addEventListener("change", () => { accepted = false; save.textContent = saveLabel; });
  });
  edited();
  document.getElementById("s-check").addEventListener("click", async () => {
    show("schedule-error", "");
    try {
      if (editing()) {
        // A change is checked by saving it: the server compares it with everything else.
        overlaps.innerHTML = "";
        return;
      }
      const data = body();
      data.accept_conflicts = false;
      list(await api("POST", "/api/v1/schedules/check", data));
    } catch (error) {
      show("schedule-error", error.message);
    }
  });
  scheduleForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    show("schedule-error", "");
    try {
      if (editing()) await api("PATCH", `/api/v1/schedules/${editing()}`, body());
      else await api("POST", "/api/v1/schedules", body());
      window.location.reload();
    } catch (error) {
      const found = error.data && error.data.detail && error.data.detail.conflicts;
      if (found) list(found);
      else show("schedule-error", error.message);
    }
  });
  const load = async (id) => {
    const item = await api("GET", `/api/v1/schedules/${id}`);
    scheduleForm.schedule_id.value = item.id;
    scheduleForm.title.value = item.title;
    scheduleForm.bulletin_id.value = item.bulletin_id;
    scheduleForm.bulletin_id.disabled = true; // content is the schedule's identity: end it and add another
    scheduleForm.starts_local.value = item.starts_local.slice(0, 16);
    const rule = item.rule || "";
    if (![...scheduleForm.rule.options].some((o) => o.value === rule)) {
      scheduleForm.rule.add(new Option(rule, rule)); // a rule written through the API
    }
    scheduleForm.rule.value = rule;
    scheduleForm.plays.value = item.plays;
    const some = item.target_clusters.length > 0;
    const reach = scheduleForm.querySelector(`input[name=reach][value=${some ? "clusters" : "area"}]`);
    if (reach) reach.checked = true;
    scheduleForm.querySelectorAll("input[name=clusters]").forEach((c) => {
      c.checked = item.target_clusters.includes(c.value);
    });
    const note = document.getElementById("editing");
    note.textContent = `${scheduleForm.dataset.editing}: ${item.title}`;
    note.hidden = false;
    stopEditing.hidden = false;
    overlaps.innerHTML = "";
    accepted = false;
    save.textContent = saveLabel;
    document.getElementById("schedule-box").open = true;
    scheduleForm.title.focus();
  };
  stopEditing.addEventListener("click", () => window.location.reload());
  document.querySelectorAll("tr[data-schedule] button[data-slot-action]").forEach((button) => {
    button.addEventListener("click", async () => {
      const row = button.closest("tr");
      const id = row.dataset.schedule;
      show("slot-error", "");
      try {
        const action = button.dataset.slotAction;
        if (action === "edit") {
          await load(id);
          return;
        }
        if (action === "end" && !window.confirm(scheduleForm.dataset.endQuestion)) return;
        // Skipping one play or ending the schedule takes plays away and cannot add an
        // overlap, so overlaps accepted when it was saved do not stand in the way.
        const change = { accept_conflicts: true };
        if (action === "end") change.status = "ended";
        else {
          const item = await api("GET", `/api/v1/schedules/${id}`);
          change.exdates_local = [...item.exdates_local, row.dataset.occurrence];
        }
        await api("PATCH", `/api/v1/schedules/${id}`, change);
        window.location.reload();
      } catch (error) {
        show("slot-error", error.message);
      }
    });
  });
}

// Write a bulletin: text (spoken by the server), a file or a recording made here; kept
// as a draft or sent straight to the editorial board.
const bulletinForm = document.getElementById("bulletin-form");
if (bulletinForm) {
  const day = (value, end) => {
    if (!value) return undefined;
    const local = new Date(`${value}T${end ? "23:59:59" : "00:00:00"}`);
    return local.toISOString();
  };
  bulletinForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    show("bulletin-error", "");
    const buttons = bulletinForm.querySelectorAll("button[type=submit]");
    buttons.forEach((b) => { b.disabled = true; });
    try {
      const body = {
        title: bulletinForm.title.value.trim(),
        topic: bulletinForm.topic.value.trim(),
        class: bulletinForm.cls.value,
        language: bulletinForm.language.value,
      };
      const text = bulletinForm.text.value.trim();
      if (text) body.text = text;
      const from = day(bulletinForm.valid_from.value, false);
      const until = day(bulletinForm.valid_until.value, true);
      if (from) body.valid_from = from;
      if (until) body.valid_until = until;
      const sha256 = await uploadAudio(bulletinForm.audio);
      if (sha256) body.media_sha256 = sha256;
      const created = await api("POST", "/api/v1/bulletins", body);
      if (event.submitter && event.submitter.value === "submit") {
        await api("POST", `/api/v1/bulletins/${created.id}/submit`);
      }
      window.location.reload();
    } catch (error) {
      buttons.forEach((b) => { b.disabled = false; });
      show("bulletin-error", error.message);
    }
  });
}
