// lsg-edge serve: the page's side of the protocol (README, "lsg-edge serve").
// Microphone → AudioWorklet (pcm-worklet.js: 16 kHz mono int16) → WebSocket; commits and drafts
// back into the captions, progress into the lag figure. Typed text goes over a text stream
// ("input": "text") a word at a time, its translation into the same view.
"use strict";

const CHUNK_MS = 100; // audio per frame, as pcm-worklet.js posts it
const TYPING_IDLE_MS = 15000; // a text stream left this long is ended (its sentence finished) before the server's timeout

const $ = (id) => document.getElementById(id);
const toggle = $("toggle");
const statusLine = $("status");
const lagOutput = $("lag");
const views = { source: $("captions"), target: $("translation") };

let run = null; // the running capture: {ws, context, media, sentMs, sentAt}

function setState(state, message) {
  document.body.dataset.state = state;
  if (message !== undefined) statusLine.textContent = message;
  toggle.textContent = state === "streaming" ? "Stop" : "Start";
  toggle.disabled = state === "connecting" || state === "stopping";
  const locked = state !== "idle" && state !== "done" && state !== "error";
  for (const id of ["language", "target", "policy"]) $(id).disabled = locked || $(id).dataset.unavailable === "1";
  if (state === "typing") toggle.disabled = true; // one stream at a time: the mic waits for the text to end
  $("typed").disabled = ["connecting", "streaming", "stopping"].includes(state) || $("typed").dataset.unavailable === "1";
}

function resetView(view) {
  view.querySelector(".committed").textContent = "";
  view.querySelector(".tentative").textContent = "";
}

function showCommit(message) {
  const view = views[message.stream] || views.source;
  const committed = view.querySelector(".committed");
  const separator = committed.textContent ? (message.separator || " ") : "";
  committed.textContent += separator + message.text;
  view.querySelector(".tentative").textContent = "";
}

function showDraft(message) {
  const view = views[message.stream] || views.source;
  const text = message.text.trim();
  view.querySelector(".tentative").textContent = text ? " " + text : "";
}

function showLag(heardMs) {
  // Time since the newest audio the server has taken was captured: what the captions trail by.
  const sent = run && run.sentAt.find(([ms]) => ms >= heardMs);
  if (!sent) return;
  const lagS = (performance.now() - sent[1]) / 1000;
  lagOutput.textContent = lagS.toFixed(1) + " s";
  lagOutput.dataset.ms = Math.round(lagS * 1000);
  while (run.sentAt.length > 1 && run.sentAt[0][0] < heardMs) run.sentAt.shift();
}

async function start() {
  resetView(views.source);
  resetView(views.target);
  const target = $("target").value || null;
  views.target.hidden = target === null;
  lagOutput.textContent = "–";
  setState("connecting", "Opening the microphone…");
  let media, context;
  try {
    media = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
    });
    context = new AudioContext();
    await context.audioWorklet.addModule("/static/pcm-worklet.js");
  } catch (error) {
    if (media) media.getTracks().forEach((t) => t.stop());
    setState("error", "No microphone: " + error.message);
    return;
  }
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${scheme}//${location.host}/ws`);
  ws.binaryType = "arraybuffer";
  run = { ws, context, media, ready: false, pending: [], sentMs: 0, sentAt: [] };
  const source = context.createMediaStreamSource(media);
  const resampler = new AudioWorkletNode(context, "pcm-resampler", { numberOfOutputs: 1 });
  const mute = context.createGain();
  mute.gain.value = 0; // the worklet must be pulled by the graph, but nothing is played back
  source.connect(resampler).connect(mute).connect(context.destination);
  const send = (chunk, capturedAt) => {
    ws.send(chunk);
    run.sentMs += CHUNK_MS;
    run.sentAt.push([run.sentMs, capturedAt]);
    document.body.dataset.sentMs = run.sentMs; // for scripts driving the page
  };
  resampler.port.onmessage = (event) => {
    if (!run || ws.readyState > WebSocket.OPEN) return;
    // Audio captured before the server is ready waits here: the first word must not be lost.
    if (!run.ready) run.pending.push([event.data, performance.now()]);
    else send(event.data, performance.now());
  };
  ws.onopen = () => {
    ws.send(JSON.stringify({ language: $("language").value, target, policy: $("policy").value }));
  };
  ws.onmessage = (event) => {
    const message = JSON.parse(event.data);
    switch (message.type) {
      case "ready":
        run.ready = true;
        for (const [chunk, capturedAt] of run.pending) send(chunk, capturedAt);
        run.pending = [];
        setState("streaming", `Listening (${context.sampleRate} Hz microphone → 16 kHz). Press Stop to finish.`);
        break;
      case "commit": showCommit(message); break;
      case "draft": showDraft(message); break;
      case "progress": showLag(message.heard_ms); break;
      case "done":
        views.source.querySelector(".tentative").textContent = "";
        views.target.querySelector(".tentative").textContent = "";
        setState("done", `Done: ${(message.heard_ms / 1000).toFixed(1)} s of audio.`);
        break;
      case "error": setState("error", "Server: " + message.message); break;
    }
  };
  ws.onclose = (event) => {
    stopCapture();
    const state = document.body.dataset.state;
    if (state !== "done" && state !== "error") {
      setState("error", `Connection closed (${event.code}${event.reason ? ": " + event.reason : ""}).`);
    }
    run = null;
  };
}

function stopCapture() {
  if (!run) return;
  run.media.getTracks().forEach((t) => t.stop());
  if (run.context.state !== "closed") run.context.close();
}

function stop() {
  if (!run) return;
  stopCapture();
  setState("stopping", "Finishing the last words…");
  if (run.ws.readyState === WebSocket.OPEN) run.ws.send(JSON.stringify({ type: "stop" }));
}

toggle.addEventListener("click", () => (document.body.dataset.state === "streaming" ? stop() : start()));

// --- typed text ----------------------------------------------------------------------------------

let typing = null; // the open text stream: {ws, ready, pending, idle, ending}

function openTyping() {
  const target = $("target").value || null;
  if (target === null) {
    setState("error", "Choose a language to translate to, then type.");
    return null;
  }
  resetView(views.source);
  resetView(views.target);
  views.target.hidden = false;
  lagOutput.textContent = "–";
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${scheme}//${location.host}/ws`);
  const run = { ws, ready: false, pending: [], idle: null, ending: false };
  ws.onopen = () => {
    ws.send(JSON.stringify({ input: "text", language: $("language").value, target, policy: $("policy").value }));
  };
  ws.onmessage = (event) => {
    const message = JSON.parse(event.data);
    switch (message.type) {
      case "ready":
        run.ready = true;
        for (const piece of run.pending) ws.send(JSON.stringify({ type: "text", text: piece }));
        run.pending = [];
        if (run.ending) ws.send(JSON.stringify({ type: "stop" }));
        break;
      case "commit": showCommit(message); break;
      case "draft": showDraft(message); break;
      case "progress": document.body.dataset.wordsRead = message.words_read; break;
      case "done":
        views.target.querySelector(".tentative").textContent = "";
        setState("done", `Done: ${message.words_read} words translated.`);
        break;
      case "error": setState("error", "Server: " + message.message); break;
    }
  };
  ws.onclose = (event) => {
    clearTimeout(run.idle);
    if (typing === run) typing = null;
    const state = document.body.dataset.state;
    if (state !== "done" && state !== "error") {
      setState("error", `Connection closed (${event.code}${event.reason ? ": " + event.reason : ""}).`);
    }
  };
  setState("typing", "Translating as you type. Enter ends a sentence, Esc ends the text.");
  return run;
}

function sendTyped(piece) {
  if (!typing) typing = openTyping();
  if (!typing) return;
  const committed = views.source.querySelector(".committed");
  committed.textContent += piece.replace(/\s+/g, " ");
  if (typing.ready) typing.ws.send(JSON.stringify({ type: "text", text: piece }));
  else typing.pending.push(piece);
  clearTimeout(typing.idle);
  typing.idle = setTimeout(endTyped, TYPING_IDLE_MS);
}

function endTyped() {
  const box = $("typed");
  if (box.value.trim()) sendTyped(box.value);
  box.value = "";
  if (!typing) return;
  clearTimeout(typing.idle);
  setState("stopping", "Finishing the translation…");
  if (typing.ready) typing.ws.send(JSON.stringify({ type: "stop" }));
  else typing.ending = true; // sent after the text still waiting for the server's "ready"
}

$("typed").addEventListener("input", (event) => {
  // Words are sent once whitespace follows them; the word being typed stays in the box, editable.
  const box = event.target;
  const cut = box.value.search(/\s\S*$/);
  if (cut < 0) return;
  sendTyped(box.value.slice(0, cut + 1));
  box.value = box.value.slice(cut + 1);
});

$("typed").addEventListener("keydown", (event) => {
  if (event.key === "Enter") {
    event.preventDefault();
    sendTyped(event.target.value + "\n");
    event.target.value = "";
  } else if (event.key === "Escape") {
    event.preventDefault();
    endTyped();
  }
});

fetch("/config").then((r) => r.json()).then((config) => {
  if (!config.translation_available) {
    for (const id of ["target", "typed"]) {
      $(id).disabled = true;
      $(id).title = "This server was started without translation (lsg-edge serve --translate).";
      $(id).dataset.unavailable = "1";
    }
  }
}).catch(() => {});
setState("idle");
