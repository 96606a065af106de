// A xiaozhi device in the browser (PROTOCOL.md: OTA, WebSocket protocol
// version 1, Opus in and out). No codec is shipped: the browser's own
// WebCodecs AudioEncoder/AudioDecoder do the Opus work.
//
// Counters for tests and curious people live on #stats as data attributes:
// data-state, data-sent (uplink frames), data-received (downlink frames),
// data-decoded, data-hello (1 once the server hello arrived), data-stt,
// data-replies (tts stop count), data-dtx (TOC-only packets sent for
// frames the encoder skipped), data-error.
"use strict";

const $ = (id) => document.getElementById(id);
const stats = $("stats");
const FRAME_MS = 60;
const UP_RATE = 16000;
const FRAME_SAMPLES = UP_RATE * FRAME_MS / 1000;   // 960

const st = {
  ws: null, state: "idle", sessionId: "", mode: "auto",
  sent: 0, received: 0, decoded: 0, stt: 0, replies: 0,
  micCtx: null, micNode: null, micStream: null, encoder: null,
  pcm: new Float32Array(FRAME_SAMPLES), pcmLen: 0, pcmTs: 0,
  sending: false,            // microphone frames go to the server
  lastOutTs: -60000, lastToc: 0x58, dtx: 0,  // 0x58: SILK WB 60 ms TOC
  decoder: null, playCtx: null, playAt: 0, downRate: 24000,
  downFrame: 60, downTs: 0, pttHeld: false, drainTimer: 0,
};

function randomHex(n) {
  const b = new Uint8Array(n);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, "0"));
}

function uuid4() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const h = randomHex(16);
  h[6] = "4" + h[6][1];
  h[8] = ((parseInt(h[8], 16) & 0x3f) | 0x80).toString(16);
  const s = h.join("");
  return `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-` +
         `${s.slice(16, 20)}-${s.slice(20)}`;
}

// A locally administered MAC-style id, kept across visits.
function deviceIds() {
  let dev = localStorage.getItem("xiaozhi.device-id");
  if (!dev) {
    const h = randomHex(6);
    h[0] = ((parseInt(h[0], 16) & 0xfc) | 0x02).toString(16).padStart(2, "0");
    dev = h.join(":");
    localStorage.setItem("xiaozhi.device-id", dev);
  }
  let cid = localStorage.getItem("xiaozhi.client-id");
  if (!cid) {
    cid = uuid4();
    localStorage.setItem("xiaozhi.client-id", cid);
  }
  return { dev, cid };
}

function publish() {
  stats.dataset.state = st.state;
  stats.dataset.sent = st.sent;
  stats.dataset.received = st.received;
  stats.dataset.decoded = st.decoded;
  stats.dataset.stt = st.stt;
  stats.dataset.replies = st.replies;
  stats.dataset.dtx = st.dtx;
  $("state").textContent = st.state;
  $("n-sent").textContent = st.sent;
  $("n-recv").textContent = st.received;
  $("n-dec").textContent = st.decoded;
}

function setState(s) {
  st.state = s;
  const on = st.ws && st.ws.readyState === WebSocket.OPEN;
  $("connect").disabled = !!st.ws;
  $("disconnect").disabled = !st.ws;
  $("talk").disabled = !on || st.mode !== "manual";
  $("abort").disabled = !on || s !== "speaking";
  $("text").disabled = $("send-text").disabled = !on;
  publish();
}

function fail(msg) {
  console.error(msg);
  $("error").textContent = msg;
  stats.dataset.error = msg;
}

function logLine(cls, text) {
  const li = document.createElement("li");
  li.className = cls;
  li.textContent = text;
  $("log").appendChild(li);
  li.scrollIntoView({ block: "nearest" });
}

function send(obj) {
  if (!st.ws || st.ws.readyState !== WebSocket.OPEN) return;
  if (st.sessionId) obj.session_id = st.sessionId;
  st.ws.send(JSON.stringify(obj));
}

// ---------------------------------------------------------------- uplink

const WORKLET = `
class Tap extends AudioWorkletProcessor {
  process(inputs) {
    const ch = inputs[0] && inputs[0][0];
    if (ch) this.port.postMessage(ch.slice(0));
    return true;
  }
}
registerProcessor("xiaozhi-tap", Tap);
`;

async function startMicrophone() {
  if (!navigator.mediaDevices || !window.AudioEncoder) {
    throw new Error("microphone or WebCodecs unavailable: use https or " +
                    "localhost, and a browser with WebCodecs");
  }
  // As the firmware and the reference browser client: 16 kHz mono, 60 ms,
  // VOIP, DTX (silence becomes tiny packets, which helps the server's VAD).
  let cfg = { codec: "opus", sampleRate: UP_RATE, numberOfChannels: 1,
              bitrate: 16000,
              opus: { frameDuration: FRAME_MS * 1000, application: "voip",
                      usedtx: true } };
  let sup = await AudioEncoder.isConfigSupported(cfg);
  if (!sup.supported) {
    cfg = { codec: "opus", sampleRate: UP_RATE, numberOfChannels: 1,
            bitrate: 16000, opus: { frameDuration: FRAME_MS * 1000 } };
    sup = await AudioEncoder.isConfigSupported(cfg);
  }
  if (!sup.supported) throw new Error("this browser cannot encode Opus");
  stats.dataset.encoder = JSON.stringify(sup.config.opus || {});
  st.encoder = new AudioEncoder({
    output: (chunk) => {
      if (chunk.timestamp <= st.lastOutTs) return;   // already filled in
      st.lastOutTs = chunk.timestamp;
      const b = new Uint8Array(chunk.byteLength);
      chunk.copyTo(b);
      st.lastToc = b[0] & 0xfc;
      sendAudio(b);
    },
    error: (e) => fail("encoder: " + e.message),
  });
  st.encoder.configure(cfg);
  st.micStream = await navigator.mediaDevices.getUserMedia({
    audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true },
  });
  // The context runs at 16 kHz: the browser resamples the microphone.
  st.micCtx = new AudioContext({ sampleRate: UP_RATE });
  const url = URL.createObjectURL(new Blob([WORKLET],
                                           { type: "text/javascript" }));
  await st.micCtx.audioWorklet.addModule(url);
  const src = st.micCtx.createMediaStreamSource(st.micStream);
  st.micNode = new AudioWorkletNode(st.micCtx, "xiaozhi-tap");
  st.micNode.port.onmessage = (ev) => onPcm(ev.data);
  src.connect(st.micNode);
  // keep the graph pulled without making noise
  const mute = st.micCtx.createGain();
  mute.gain.value = 0;
  st.micNode.connect(mute).connect(st.micCtx.destination);
  await st.micCtx.resume();
}

function sendAudio(b) {
  if (!st.sending || !st.ws || st.ws.readyState !== WebSocket.OPEN) return;
  st.ws.send(b);
  st.sent++;
  publish();
}

// With DTX on, Chrome's encoder emits nothing for most silent frames. A
// device sends a packet every 60 ms (1-byte TOC-only packets in DTX), and
// servers time their end-of-utterance detection on that: so a frame the
// encoder skipped is sent as a TOC-only packet once it is two frames
// overdue.
function fillDtx(ts) {
  const F = FRAME_MS * 1000;
  while (st.lastOutTs + F < ts - 2 * F) {
    st.lastOutTs += F;
    if (st.sending) st.dtx++;
    sendAudio(new Uint8Array([st.lastToc]));
  }
}

// 128-sample blocks in, 960-sample (60 ms) AudioData frames out.
function onPcm(block) {
  let off = 0;
  while (off < block.length) {
    const n = Math.min(block.length - off, FRAME_SAMPLES - st.pcmLen);
    st.pcm.set(block.subarray(off, off + n), st.pcmLen);
    st.pcmLen += n;
    off += n;
    if (st.pcmLen === FRAME_SAMPLES) {
      st.pcmLen = 0;
      const ts = st.pcmTs;
      st.pcmTs += FRAME_MS * 1000;
      fillDtx(ts);
      if (!st.sending || !st.encoder || st.encoder.state !== "configured") {
        continue;
      }
      st.encoder.encode(new AudioData({
        format: "f32", sampleRate: UP_RATE, numberOfFrames: FRAME_SAMPLES,
        numberOfChannels: 1, timestamp: ts, data: st.pcm.slice(0),
      }));
    }
  }
}

function stopMicrophone() {
  st.sending = false;
  if (st.micStream) st.micStream.getTracks().forEach((t) => t.stop());
  if (st.micCtx) st.micCtx.close();
  if (st.encoder && st.encoder.state !== "closed") st.encoder.close();
  st.micStream = st.micCtx = st.micNode = st.encoder = null;
}

// ---------------------------------------------------------------- downlink

function setupDecoder(rate) {
  if (st.decoder && st.decoder.state !== "closed") st.decoder.close();
  st.downRate = rate;
  st.decoder = new AudioDecoder({
    output: (data) => { play(data); },
    error: (e) => fail("decoder: " + e.message),
  });
  st.decoder.configure({ codec: "opus", sampleRate: rate,
                         numberOfChannels: 1 });
  if (!st.playCtx) st.playCtx = new AudioContext();
}

function play(data) {
  st.decoded++;
  publish();
  const n = data.numberOfFrames;
  const buf = st.playCtx.createBuffer(1, n, data.sampleRate);
  const pcm = new Float32Array(n);
  data.copyTo(pcm, { planeIndex: 0, format: "f32-planar" });
  data.close();
  buf.copyToChannel(pcm, 0);
  const src = st.playCtx.createBufferSource();
  src.buffer = buf;
  src.connect(st.playCtx.destination);
  const now = st.playCtx.currentTime;
  if (st.playAt < now + 0.02) st.playAt = now + 0.05;
  src.start(st.playAt);
  st.playAt += n / data.sampleRate;
}

function onAudio(buf) {
  st.received++;
  publish();
  if (st.state !== "speaking" || !st.decoder ||
      st.decoder.state !== "configured") {
    return;                       // a device drops audio outside a reply
  }
  st.decoder.decode(new EncodedAudioChunk({
    type: "key", timestamp: st.downTs, data: new Uint8Array(buf) }));
  st.downTs += st.downFrame * 1000;
}

// Seconds of reply audio still queued in the player.
function queuedSeconds() {
  return st.playCtx ? Math.max(0, st.playAt - st.playCtx.currentTime) : 0;
}

// ---------------------------------------------------------------- session

function startListening() {
  if (st.mode === "auto") {
    send({ type: "listen", state: "start", mode: "auto" });
    st.sending = true;
    setState("listening");
  } else {
    st.sending = st.pttHeld;
    setState(st.pttHeld ? "listening" : "connected");
  }
}

function onText(text) {
  let m;
  try { m = JSON.parse(text); } catch (e) { return; }
  if (!m || typeof m.type !== "string") return;
  switch (m.type) {
    case "hello": {
      if (m.transport !== "websocket") return;
      st.sessionId = m.session_id || "";
      const ap = m.audio_params || {};
      st.downFrame = ap.frame_duration || 60;
      setupDecoder(ap.sample_rate || 24000);
      $("session").textContent = st.sessionId;
      $("downlink").textContent = `${st.downRate} Hz, ${st.downFrame} ms`;
      stats.dataset.hello = "1";
      startListening();
      break;
    }
    case "stt":
      st.stt++;
      if (m.text) logLine("user", m.text);
      publish();
      break;
    case "llm":
      break;
    case "tts":
      if (m.state === "start") {
        clearTimeout(st.drainTimer);
        if (st.mode === "auto") st.sending = false;
        st.downTs = 0;
        setState("speaking");
      } else if (m.state === "sentence_start" && m.text) {
        logLine("assistant", m.text);
      } else if (m.state === "stop") {
        st.replies++;
        // back to listening once what is queued has played (auto mode)
        const wait = Math.round(queuedSeconds() * 1000);
        clearTimeout(st.drainTimer);
        st.drainTimer = setTimeout(() => {
          if (st.state === "speaking") startListening();
        }, wait);
        publish();
      }
      break;
    case "mcp":
      onMcp(m.payload);
      break;
    case "alert":
      logLine("info", `${m.status}: ${m.message}`);
      break;
    default:
      break;
  }
}

// The page is a minimal MCP server: it has no tools.
function onMcp(p) {
  if (!p || typeof p.id !== "number" || typeof p.method !== "string") return;
  let result;
  if (p.method === "initialize") {
    result = { protocolVersion: "2024-11-05", capabilities: { tools: {} },
               serverInfo: { name: "web-browser", version: "1.0.0" } };
  } else if (p.method === "tools/list") {
    result = { tools: [] };
  } else {
    send({ type: "mcp", payload: { jsonrpc: "2.0", id: p.id,
           error: { message: "Method not implemented: " + p.method } } });
    return;
  }
  send({ type: "mcp", payload: { jsonrpc: "2.0", id: p.id, result } });
}

async function connect() {
  $("error").textContent = "";
  stats.dataset.error = "";
  st.mode = $("mode").value;
  const { dev, cid } = deviceIds();
  setState("connecting");
  try {
    await startMicrophone();
    const r = await fetch($("ota-url").value, {
      method: "POST",
      headers: { "Device-Id": dev, "Client-Id": cid,
                 "Content-Type": "application/json" },
      body: JSON.stringify({
        application: { name: "xiaozhi-web", version: "1.0.0" },
        board: { type: "web-browser", name: navigator.userAgent.slice(0, 60) },
        mac_address: dev, uuid: cid }),
    });
    if (!r.ok) throw new Error(`OTA answered ${r.status}`);
    const cfg = await r.json();
    if (!cfg.websocket || !cfg.websocket.url) {
      throw new Error("OTA answer has no websocket url");
    }
    const u = new URL(cfg.websocket.url);
    u.searchParams.set("device-id", dev);
    u.searchParams.set("client-id", cid);
    if (cfg.websocket.token) {
      u.searchParams.set("authorization", "Bearer " + cfg.websocket.token);
    }
    const ws = new WebSocket(u.toString());
    ws.binaryType = "arraybuffer";
    st.ws = ws;
    ws.onopen = () => {
      setState("connected");
      ws.send(JSON.stringify({
        type: "hello", version: 1, transport: "websocket",
        features: { mcp: true },
        audio_params: { format: "opus", sample_rate: UP_RATE, channels: 1,
                        frame_duration: FRAME_MS } }));
    };
    ws.onmessage = (ev) => {
      if (typeof ev.data === "string") onText(ev.data);
      else onAudio(ev.data);
    };
    ws.onclose = (ev) => {
      logLine("info", `connection closed (${ev.code})`);
      cleanup();
    };
    ws.onerror = () => fail("WebSocket error");
  } catch (e) {
    fail(e.message);
    cleanup();
  }
}

function cleanup() {
  stopMicrophone();
  if (st.decoder && st.decoder.state !== "closed") st.decoder.close();
  st.decoder = null;
  st.ws = null;
  st.sessionId = "";
  clearTimeout(st.drainTimer);
  setState("idle");
}

function disconnect() {
  if (st.ws) st.ws.close(1000);
}

function pttDown(ev) {
  ev.preventDefault();
  if (st.mode !== "manual" || !st.ws || st.pttHeld) return;
  st.pttHeld = true;
  $("talk").classList.add("active");
  if (st.state === "speaking") send({ type: "abort" });
  send({ type: "listen", state: "start", mode: "manual" });
  st.sending = true;
  setState("listening");
}

function pttUp(ev) {
  ev.preventDefault();
  if (!st.pttHeld) return;
  st.pttHeld = false;
  $("talk").classList.remove("active");
  st.sending = false;
  send({ type: "listen", state: "stop" });
  setState("connected");
}

function init() {
  if (!window.isSecureContext) $("insecure").hidden = false;
  $("ota-url").value = location.origin + "/xiaozhi/ota/";
  $("device-id").textContent = deviceIds().dev;
  $("connect").onclick = connect;
  $("disconnect").onclick = disconnect;
  $("abort").onclick = () => send({ type: "abort" });
  $("mode").onchange = () => {
    st.mode = $("mode").value;
    if (st.ws && st.sessionId && st.state !== "speaking") startListening();
    else setState(st.state);
  };
  const talk = $("talk");
  talk.addEventListener("pointerdown", pttDown);
  talk.addEventListener("pointerup", pttUp);
  talk.addEventListener("pointerleave", pttUp);
  $("text-form").onsubmit = (ev) => {
    ev.preventDefault();
    const t = $("text").value.trim();
    if (!t) return;
    send({ type: "listen", state: "detect", text: t });
    $("text").value = "";
  };
  setState("idle");
}

init();
