"use strict";
// The streamact live page: camera frames -> WebSocket /ws -> live label, top classes, gesture events, timeline;
// for a detection model, each frame's boxes with their labels, scores and tube ids drawn over the video.
// Plain JS, no build step. Query parameters: token (if the server wants one), fps (frames sent per second, default
// 15), format (jpeg, default, or png: lossless), width (largest frame width sent, default 320).

const params = new URLSearchParams(location.search);
const maxFps = Number(params.get("fps") || 15);
const format = params.get("format") === "png" ? "image/png" : "image/jpeg";
const maxWidth = Number(params.get("width") || 320);
const $ = (id) => document.getElementById(id);

// Everything the page received, in order: shown below, and read by the browser test.
const seen = window.streamact = { hello: null, predictions: [], events: [], sent: [], errors: [], closed: null };

const palette = ["#7f8c8d", "#4fb3ff", "#ff7f50", "#7bd389", "#f5c542", "#c77dff", "#ff5d8f", "#3ddbd9",
                 "#b8e05c", "#ff9f1c", "#8d99ae", "#e76f51", "#2ec4b6", "#ffbf69", "#a0c4ff", "#cdb4db"];
const colour = (label) => palette[Math.max(0, seen.hello.labels.indexOf(label)) % palette.length];
const tubeColour = (tube) => `hsl(${(tube * 222.5) % 360}, 85%, 60%)`;  // golden-angle hues: neighbours differ

let socket = null, camera = null, encoding = false, lastSent = -Infinity;
const sentAt = new Map();           // frame index -> performance.now() when it was sent
const latencies = [], sentTimes = [], resultTimes = [];
const timeline = [];                // {label, score} per prediction

function recent(times, now) {       // events per second over the last 2 s
  while (times.length && now - times[0] > 2000) times.shift();
  return times.length / 2;
}

function percentile(values, q) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

async function start() {
  $("status").textContent = "";
  const token = params.get("token");
  socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws` +
                         (token ? `?token=${encodeURIComponent(token)}` : ""));
  socket.binaryType = "arraybuffer";
  socket.onmessage = (message) => receive(JSON.parse(message.data));
  socket.onclose = (close) => {
    seen.closed = { code: close.code, reason: close.reason };
    if (close.code !== 1000) $("status").textContent = `connection closed (${close.code} ${close.reason})`;
    stopCamera();
  };
  try {
    camera = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
  } catch (error) {
    $("status").textContent = `no camera: ${error.message}`;
    socket.close();
    return;
  }
  $("camera").srcObject = camera;
  $("toggle").textContent = "Stop";
  $("toggle").disabled = false;
  watchFrames();
}

function stopCamera() {
  if (camera) camera.getTracks().forEach((track) => track.stop());
  camera = null;
  $("toggle").textContent = "Start";
}

// Each new camera frame is considered once; frames beyond the fps cap, or while the previous one is still being
// encoded or the socket is backed up, are skipped here rather than queued (a stale frame is worth nothing).
function watchFrames() {
  const video = $("camera");
  const onFrame = (now, meta) => {
    if (!camera) return;
    maybeSend(video, meta ? meta.mediaTime : video.currentTime);
    if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(onFrame);
    else setTimeout(() => onFrame(performance.now()), 1000 / maxFps);
  };
  if (video.requestVideoFrameCallback) video.requestVideoFrameCallback(onFrame);
  else onFrame(performance.now());
}

function maybeSend(video, mediaTime) {
  const now = performance.now();
  if (encoding || !video.videoWidth || socket.readyState !== WebSocket.OPEN) return;
  if (now - lastSent < 1000 / maxFps - 2 || socket.bufferedAmount > 1 << 20) return;
  const scale = Math.min(1, maxWidth / video.videoWidth);
  const grab = $("grab");
  grab.width = Math.round(video.videoWidth * scale);
  grab.height = Math.round(video.videoHeight * scale);
  grab.getContext("2d").drawImage(video, 0, 0, grab.width, grab.height);
  encoding = true;
  lastSent = now;
  grab.toBlob(async (blob) => {
    const bytes = await blob.arrayBuffer();
    encoding = false;
    if (socket.readyState !== WebSocket.OPEN) return;
    const index = seen.sent.length;   // the server numbers frames in the order they arrive
    seen.sent.push({ index, mediaTime });
    sentAt.set(index, performance.now());
    sentTimes.push(performance.now());
    socket.send(bytes);
  }, format, 0.9);
}

function receive(message) {
  if (message.type === "hello") {
    seen.hello = message;
    $("model").textContent = `${message.model} · ${message.runtime} · stream ${message.stream}`;
    if (message.task === "detection") {
      $("bars-title").textContent = "Detections (tube, label, score)";
      $("event-log").hidden = true;
    }
    $("legend").innerHTML = message.labels.map((l) => `<span><i style="background:${colour(l)}"></i>${l}</span>`)
      .join("");
  } else if (message.type === "prediction") {
    const now = performance.now();
    const latency = now - sentAt.get(message.frame);
    for (const index of sentAt.keys()) if (index <= message.frame) sentAt.delete(index);
    seen.predictions.push({ ...message, latency });
    latencies.push(latency);
    if (latencies.length > 200) latencies.shift();
    resultTimes.push(now);
    showStats(message, latency, now);
    if (seen.hello.task === "detection") showDetections(message);
    else showPrediction(message);
    for (const event of message.events) showEvent(event);
  } else if (message.type === "error") {
    seen.errors.push(message);
    $("status").textContent = `${message.code}: ${message.message}`;
  }
}

function showStats(p, latency, now) {
  $("latency").textContent = latency.toFixed(0);
  $("latency95").textContent = percentile(latencies, 0.95).toFixed(0);
  $("sent-fps").textContent = recent(sentTimes, now).toFixed(1);
  $("result-fps").textContent = recent(resultTimes, now).toFixed(1);
  $("dropped").textContent = p.dropped;
}

function bars(rows) {               // [{score, text, fill}] -> the bar chart's items
  return rows.map((r) => `<li><div class="bar" style="width:${(100 * r.score).toFixed(1)}%;background:${r.fill}">` +
    `</div><span>${r.text}</span><span class="score">${r.score.toFixed(2)}</span></li>`).join("");
}

function showPrediction(p) {
  $("label").textContent = p.warm ? `${p.label} ${p.score.toFixed(2)}` : `${p.label} (warming up)`;
  $("label").className = p.warm ? "label" : "label cold";
  $("topk").innerHTML = bars(p.topk.map(([label, score]) => ({ score, text: label, fill: colour(label) })));
  timeline.push({ label: p.label, score: p.score });
  drawTimeline();
}

// Detections, best first: the label names the best one, the bars list them all, the timeline shows the best score.
function showDetections(p) {
  const found = [...p.detections].sort((a, b) => b.score - a.score);
  const best = found[0];
  $("label").textContent = best ? `${best.label} ${best.score.toFixed(2)} #${best.tube}` : "no detections";
  $("label").className = best ? "label" : "label cold";
  $("topk").innerHTML = bars(found.map((d) => ({ score: d.score, text: `#${d.tube} ${d.label}`,
                                                 fill: tubeColour(d.tube) })));
  drawBoxes(p);
  timeline.push(best ? { label: best.label, score: best.score } : { label: null, score: 0 });
  drawTimeline();
}

// Boxes come in the pixels of the frame sent (p.width x p.height); the video shows the camera frame scaled to fit
// its element (letterboxed when the element's shape differs), and the overlay canvas covers the element.
function drawBoxes(p) {
  const video = $("camera"), canvas = $("overlay");
  canvas.width = video.clientWidth;
  canvas.height = video.clientHeight;
  const context = canvas.getContext("2d");
  context.clearRect(0, 0, canvas.width, canvas.height);
  if (!video.videoWidth) return;
  const fit = Math.min(canvas.width / video.videoWidth, canvas.height / video.videoHeight);
  const left = (canvas.width - video.videoWidth * fit) / 2, top = (canvas.height - video.videoHeight * fit) / 2;
  const sx = video.videoWidth * fit / p.width, sy = video.videoHeight * fit / p.height;
  context.font = "600 14px system-ui, sans-serif";
  context.lineWidth = 2;
  for (const d of p.detections) {
    const [x1, y1, x2, y2] = d.box;
    const x = left + x1 * sx, y = top + y1 * sy, text = `${d.label} ${d.score.toFixed(2)} #${d.tube}`;
    context.strokeStyle = context.fillStyle = tubeColour(d.tube);
    context.strokeRect(x, y, (x2 - x1) * sx, (y2 - y1) * sy);
    const textY = Math.max(0, y - 18);
    context.fillRect(x, textY, context.measureText(text).width + 6, 18);
    context.fillStyle = "#000";
    context.fillText(text, x + 3, textY + 14);
  }
}

function showEvent(event) {
  seen.events.push(event);
  const item = document.createElement("li");
  item.style.borderColor = colour(event.label);
  item.textContent = `${event.label} ${event.score.toFixed(2)} · frames ${event.start_frame}–${event.end_frame ?? "…"}` +
                     ` · ${event.trigger}`;
  $("events").prepend(item);
}

function drawTimeline() {
  const canvas = $("timeline");
  const context = canvas.getContext("2d");
  const column = 3, columns = Math.floor(canvas.width / column);
  if (timeline.length > columns) timeline.splice(0, timeline.length - columns);
  context.clearRect(0, 0, canvas.width, canvas.height);
  timeline.forEach((p, i) => {
    const height = Math.max(2, p.score * canvas.height);
    context.fillStyle = colour(p.label);
    context.fillRect((columns - timeline.length + i) * column, canvas.height - height, column, height);
  });
}

$("toggle").onclick = () => {
  if (camera) {
    socket.close(1000);
    stopCamera();
  } else {
    start();
  }
};

start();
