// The study page: draws what the server sends, sends consent / answers / keys. The server owns
// the game loop; nothing here decides a step. Colours are those of coplay's PNG renderer.
"use strict";
const TERRAIN = ["#ece8de", "#b08458", "#46464e", "#e8c446", "#d64034", "#f0f0f5", "#60b260"];
const OBJ = [null, "#f5cd3c", "#dc3c32", "#fafafa", "#fafafa"];
const HUMAN = "#346cdc";
const KEYS = {ArrowUp: 0, ArrowDown: 1, ArrowRight: 2, ArrowLeft: 3, " ": 5};
const TILE = 64;
const log = {sent: [], keys: [], frames: 0, lastScore: 0};  // read by the browser tests
window.coplayLog = log;
let ws = null, layout = null, phase = null, colour = "#d94a3d";

function show(id) {
  for (const s of document.querySelectorAll("main > section")) s.hidden = s.id !== id;
}
function setText(cls, v) { for (const e of document.querySelectorAll(cls)) e.textContent = v; }
function send(msg) {
  if (!ws || ws.readyState !== WebSocket.OPEN) return;
  ws.send(JSON.stringify(msg));
  log.sent.push(msg);
}
const storeKey = "coplay-token";

async function token() {
  const url = new URL(location.href);
  let tok = url.searchParams.get("token") || localStorage.getItem(storeKey);
  if (!tok) {
    const body = {};
    const pid = url.searchParams.get("pid");
    if (pid) body.external_id = pid;
    const r = await fetch("/api/join", {method: "POST", body: JSON.stringify(body)});
    const data = await r.json();
    if (!r.ok) throw new Error(data.error || "cannot join");
    tok = data.token;
  }
  localStorage.setItem(storeKey, tok);
  return tok;
}

function connect(tok) {
  ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
  ws.onopen = () => send({type: "hello", token: tok});
  ws.onmessage = (ev) => onMessage(JSON.parse(ev.data));
  ws.onclose = (ev) => {
    if (ev.code === 4401) { localStorage.removeItem(storeKey); showError("unknown session"); return; }
    if (phase !== "done") setTimeout(() => connect(tok), 1000);  // resume after a restart
  };
}

function showError(m) { document.getElementById("error").textContent = m; }

function onMessage(msg) {
  if (msg.type === "layout") {
    layout = msg;
    document.body.classList.toggle("ipd", msg.game === "ipd");
    if (msg.game === "ipd") setupIPD(); else sizeCanvas();
  }
  else if (msg.type === "error") { showError(msg.message); }
  else if (msg.type === "frame") { if (layout.game === "ipd") drawIPD(msg); else draw(msg); }
  else if (msg.type === "episode_end") { log.lastScore = msg.score; }
  else if (msg.type === "phase") { onPhase(msg); }
}

function onPhase(msg) {
  phase = msg.phase;
  showError("");
  if (msg.colour) colour = msg.colour;
  setText(".agent-n", msg.agent || ""); setText(".agent-total", msg.num_agents);
  setText(".ep-n", msg.episode || ""); setText(".ep-total", msg.episodes_per_agent);
  for (const e of document.querySelectorAll(".partner-swatch")) e.style.color = colour;
  if (phase === "done") document.getElementById("code").textContent = msg.code;
  if (phase === "rate") document.getElementById("rate-form").reset();
  if (phase === "ready") {
    document.getElementById("start-go").textContent = msg.resume ? "Continue round" : "Start round";
  }
  const ipd = layout && layout.game === "ipd";
  show(phase === "play" && ipd ? "ipd" : phase);
  if (phase === "play" && !ipd) document.getElementById("game").focus();
}

function sizeCanvas() {
  const c = document.getElementById("game");
  c.width = layout.terrain[0].length * TILE; c.height = layout.terrain.length * TILE;
}

function circle(g, x, y, r, fill) {
  g.beginPath(); g.arc(x, y, r, 0, 2 * Math.PI); g.fillStyle = fill; g.fill();
  g.strokeStyle = "#282828"; g.lineWidth = 1; g.stroke();
}
function object(g, code, soup, cx, cy, r) {
  if (!code) return;
  circle(g, cx, cy, r, OBJ[code]);
  if (code === 4) {
    const [o, t] = soup;
    g.beginPath(); g.arc(cx, cy, r * 0.6, 0, 2 * Math.PI);
    g.fillStyle = t === 0 ? "#f5cd3c" : o === 0 ? "#dc3c32" : "#ec8424"; g.fill();
  }
}

function draw(frame) {
  log.frames += 1;
  const s = frame.state, g = document.getElementById("game").getContext("2d");
  const T = layout.terrain;
  for (let y = 0; y < T.length; y++) for (let x = 0; x < T[0].length; x++) {
    const code = T[y][x], x0 = x * TILE, y0 = y * TILE;
    g.fillStyle = TERRAIN[code]; g.fillRect(x0, y0, TILE, TILE);
    if (code !== 0) { g.strokeStyle = "#786e64"; g.strokeRect(x0 + 0.5, y0 + 0.5, TILE - 1, TILE - 1); }
    if (code === 2 && s.obj[y][x] === 4) {
      const [o, t] = s.soup[y][x];
      const cols = Array(o).fill("#f5cd3c").concat(Array(t).fill("#dc3c32"));
      cols.forEach((c, k) => circle(g, x0 + TILE * (0.25 + 0.25 * k), y0 + TILE * 0.25, TILE * 0.1, c));
      const tick = s.tick[y][x];
      if (tick >= 0) {
        const left = Math.max(layout.recipe_time[o][t] - tick, 0);
        g.fillStyle = "#fff"; g.font = `${TILE / 3}px sans-serif`;
        g.fillText(left === 0 ? "ok" : String(left), x0 + 6, y0 + TILE * 0.8);
      }
    } else if (code === 1) {
      object(g, s.obj[y][x], s.soup[y][x], x0 + TILE / 2, y0 + TILE / 2, TILE * 0.25);
    }
  }
  const D = [[0, -1], [0, 1], [1, 0], [-1, 0]];
  for (let i = 0; i < 2; i++) {
    const [x, y] = s.pos[i], cx = x * TILE + TILE / 2, cy = y * TILE + TILE / 2, r = TILE * 0.36;
    circle(g, cx, cy, r, i === layout.human_seat ? HUMAN : colour);
    const [dx, dy] = D[s.dir[i]];
    g.beginPath(); g.moveTo(cx + dx * r * 1.25, cy + dy * r * 1.25);
    g.lineTo(cx + dx * r * 0.6 - dy * r * 0.5, cy + dy * r * 0.6 + dx * r * 0.5);
    g.lineTo(cx + dx * r * 0.6 + dy * r * 0.5, cy + dy * r * 0.6 - dx * r * 0.5);
    g.fillStyle = "#141414"; g.fill();
    object(g, s.held[i], s.held_soup[i], cx, cy, TILE * 0.16);
  }
  document.getElementById("score").textContent = frame.score;
  document.getElementById("time-left").textContent = layout.episode_length - frame.t;
}

// --- the prisoner's dilemma: C / D, the payoff table, the history of rounds -----------------
const CHOICE = ["cooperate", "defect"];
function setupIPD() {
  const P = layout.payoff;  // P[own][other]: own points
  for (const a of [0, 1]) for (const b of [0, 1]) {
    document.getElementById(`pay-${a}${b}`).textContent = `${P[a][b]}, ${P[b][a]}`;
  }
  document.getElementById("ipd-rounds").textContent = layout.episode_length;
}
function drawIPD(frame) {
  log.frames += 1;
  const h = frame.history, body = document.querySelector("#ipd-history tbody");
  body.replaceChildren();
  let you = 0, them = 0;
  h.forEach((r, i) => {
    you += r[2]; them += r[3];
    const tr = document.createElement("tr");
    for (const v of [i + 1, CHOICE[r[0]], CHOICE[r[1]], r[2], r[3]]) {
      const td = document.createElement("td"); td.textContent = v; tr.appendChild(td);
    }
    body.prepend(tr);
  });
  document.getElementById("ipd-you").textContent = you;
  document.getElementById("ipd-them").textContent = them;
  document.getElementById("ipd-round").textContent = Math.min(frame.t + 1, layout.episode_length);
}
function move(a) { if (phase === "play") send({type: "key", action: a}); }

document.addEventListener("keydown", (ev) => {
  // Every game key is logged with the phase it met: one pressed as an episode ends is dropped.
  if (ev.key in KEYS || /^[cCdD]$/.test(ev.key)) log.keys.push({key: ev.key, phase});
  if (phase !== "play") return;
  if (layout && layout.game === "ipd") {
    const a = {c: 0, C: 0, d: 1, D: 1}[ev.key];
    if (a !== undefined && !ev.repeat) { ev.preventDefault(); move(a); }
    return;
  }
  if (!(ev.key in KEYS)) return;
  ev.preventDefault();
  send({type: "key", action: KEYS[ev.key]});
});

function buildScales() {
  for (const div of document.querySelectorAll(".scale")) {
    for (let v = 1; v <= 5; v++) {
      const l = document.createElement("label");
      l.innerHTML = `<input type="radio" name="${div.dataset.name}" value="${v}" required> ${v}`;
      div.appendChild(l);
    }
  }
}

window.addEventListener("DOMContentLoaded", async () => {
  buildScales();
  const box = document.getElementById("consent-box");
  box.addEventListener("change", () => { document.getElementById("consent-go").disabled = !box.checked; });
  document.getElementById("consent-go").addEventListener("click", () => send({type: "consent", agree: true}));
  document.getElementById("pre-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const f = new FormData(ev.target);
    send({type: "pre", answers: {age: Number(f.get("age")), gender: f.get("gender"),
          overcooked: f.get("overcooked"), gaming: Number(f.get("gaming"))}});
  });
  document.getElementById("start-go").addEventListener("click", () => send({type: "start"}));
  document.getElementById("ipd-c").addEventListener("click", () => move(0));
  document.getElementById("ipd-d").addEventListener("click", () => move(1));
  document.getElementById("rate-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const f = new FormData(ev.target);
    send({type: "rating", competence: Number(f.get("competence")),
          collaboration: Number(f.get("collaboration")), adaptivity: Number(f.get("adaptivity")),
          comment: f.get("comment") || ""});
  });
  try { connect(await token()); } catch (e) { showError(String(e)); }
});
