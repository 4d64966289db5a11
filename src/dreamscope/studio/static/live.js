// dreamscope studio: the Live tab. The browser's camera goes to the server over a WebSocket (/api/live), a frame
// at a time; the dreams come back and are drawn as they arrive. The protocol is in docs/studio.md and live.py.
// The page never queues frames: it sends one when the socket has nothing waiting to go out, and the server keeps
// only the newest one it has not dreamed yet, so what is shown is never older than a step or two.

const SEND_EVERY_MS = 1000 / 30; // at most the camera's usual rate
const WINDOW_MS = 2000; // the frame rate shown is over the last two seconds
const LATENCIES_KEPT = 60;
const APPLY_AFTER_MS = 350; // a typed change goes to the server once typing pauses

export class LiveView {
  // ui: what the studio's page lends it: el, $, buildField, readField, writeField, clearError, showFieldError,
  // label, refreshJobs(jobId), toast(text).
  constructor(ui, fields) {
    this.ui = ui;
    this.fields = fields;
    this.ws = null;
    this.stream = null;
    this.entries = {};
    this.sentAt = new Map();
    this.arrivals = [];
    this.latencies = [];
    this.frames = 0;
    this.number = 0;
    this.recording = false;
    this.timer = null;
    this.pending = {};
    this.applyTimer = null;
    this.build();
  }

  // -- the panel (controls on the left) and the stage ----------------------------------------------------------

  build() {
    const { el } = this.ui;
    const panel = el("form", { class: "recipe-form live-panel", id: "form-live", dataset: { recipe: "live" }, novalidate: true, hidden: true,
                               role: "tabpanel", "aria-labelledby": "tab-live" });
    panel.addEventListener("submit", (event) => event.preventDefault());
    panel.append(el("p", { class: "lead", text: "Dream your camera as it comes: stand still and the dream grows, move and it follows you." }));
    this.startButton = el("button", { type: "button", class: "primary go", id: "live-start", onclick: () => this.toggle() }, "Start the camera");
    panel.append(el("div", { class: "actions live-actions" }, this.startButton));
    const grid = el("div", { class: "fields" });
    const main = ["layer", "step_size", "steps", "blend", "size"];
    const more = el("details", { class: "more" }, el("summary", {}, "More settings"));
    const moreGrid = el("div", { class: "fields" });
    for (const field of this.fields) {
      const entry = this.ui.buildField("live", field);
      this.entries[field.name] = entry;
      if (["layer", "channels"].includes(field.name)) entry.wrap.classList.add("wide");
      if (field.name === "layer") entry.input.setAttribute("list", "layer-names");
      const send = () => this.change(field.name);
      entry.input.addEventListener("input", () => { clearTimeout(this.applyTimer); this.applyTimer = setTimeout(send, APPLY_AFTER_MS); });
      entry.input.addEventListener("change", send);
      (main.includes(field.name) ? grid : moreGrid).append(entry.wrap);
    }
    more.append(moreGrid);
    panel.append(grid, more);
    this.recordButton = el("button", { type: "button", class: "ghost", id: "live-record", disabled: true, onclick: () => this.record() }, "Record");
    this.mirrorButton = el("button", { type: "button", class: "ghost", id: "live-mirror", disabled: true, onclick: () => this.mirror(true) }, "Full-screen mirror");
    this.error = el("p", { class: "form-error", role: "alert", id: "live-error" });
    panel.append(el("div", { class: "live-buttons" }, this.recordButton, this.mirrorButton), this.error);
    this.panel = panel;

    this.canvas = el("canvas", { id: "live-canvas", width: 320, height: 240, "aria-label": "the live dream" });
    this.camera = el("video", { id: "live-camera", muted: true, playsinline: true, autoplay: true });
    this.stats = el("div", { class: "live-stats", id: "live-stats", "aria-live": "off" }, "");
    this.hint = el("p", { class: "live-hint", id: "live-hint" }, "Press “Start the camera”: the picture stays on this computer and its server.");
    const exit = el("button", { type: "button", class: "live-exit", id: "live-exit", title: "leave the mirror (Esc)", onclick: () => this.mirror(false) }, "×");
    this.stage = el("section", { class: "live-stage", id: "live-stage", hidden: true, "aria-label": "live dream" },
      el("div", { class: "live-screen" }, this.canvas, this.hint, exit), this.stats, this.camera);
    new ResizeObserver(() => this.fit()).observe(this.canvas.parentElement);
    document.addEventListener("keydown", (event) => { if (event.key === "Escape") this.mirror(false); });
    document.addEventListener("fullscreenchange", () => { if (!document.fullscreenElement) this.mirror(false); });
  }

  show(on) {
    this.panel.hidden = !on;
    this.stage.hidden = !on;
    document.body.classList.toggle("live-on", on);
    if (!on) this.stop();
  }

  // -- starting and stopping -----------------------------------------------------------------------------------

  toggle() {
    if (this.ws) this.stop();
    else this.start();
  }

  async start() {
    this.error.textContent = "";
    this.startButton.disabled = true;
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
    } catch (error) {
      this.startButton.disabled = false;
      this.error.textContent = `no camera: ${error.message || error.name}. Allow the camera for this page, or connect one.`;
      return;
    }
    this.camera.srcObject = this.stream;
    await this.camera.play().catch(() => {});
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}/api/live`);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    this.frames = 0;
    this.applied = false;
    this.arrivals = [];
    this.latencies = [];
    this.sentAt.clear();
    this.hint.textContent = "starting the dream…";
    ws.onmessage = (event) => this.receive(event.data);
    ws.onclose = (event) => {
      if (this.ws === ws) this.stop(event.code === 1000 || event.code === 1005 ? "" : this.closing || `the live view stopped (${event.code})`);
    };
    ws.onopen = () => {
      this.startButton.disabled = false;
      this.startButton.textContent = "Stop";
      this.startButton.classList.replace("primary", "ghost");
      this.timer = setInterval(() => this.send(), SEND_EVERY_MS);
    };
  }

  stop(message = "") {
    clearInterval(this.timer);
    this.timer = null;
    const ws = this.ws;
    this.ws = null;
    if (ws && ws.readyState <= 1) ws.close(1000);
    if (this.stream) this.stream.getTracks().forEach((track) => track.stop());
    this.stream = null;
    this.camera.srcObject = null;
    this.recording = false;
    this.closing = "";
    this.startButton.disabled = false;
    this.startButton.textContent = "Start the camera";
    this.startButton.classList.replace("ghost", "primary");
    this.recordButton.disabled = true;
    this.recordButton.textContent = "Record";
    this.recordButton.classList.remove("on");
    this.mirrorButton.disabled = true;
    this.stats.textContent = "";
    if (message) this.error.textContent = message;
    this.mirror(false);
  }

  // -- frames out, dreams in -------------------------------------------------------------------------------------

  send() {
    const ws = this.ws;
    const video = this.camera;
    if (!ws || ws.readyState !== 1 || ws.bufferedAmount > 0 || this.encoding || !video.videoWidth) return;
    const size = Number(this.value("size")) || 320;
    const scale = size / Math.max(video.videoWidth, video.videoHeight);
    const width = Math.max(1, Math.round(video.videoWidth * scale));
    const height = Math.max(1, Math.round(video.videoHeight * scale));
    if (!this.grab || this.grab.width !== width || this.grab.height !== height) {
      this.grab = new OffscreenCanvas(width, height);
    }
    this.grab.getContext("2d").drawImage(video, 0, 0, width, height);
    const number = this.number = (this.number + 1) >>> 0;
    this.encoding = true;
    this.grab.convertToBlob({ type: "image/jpeg", quality: 0.85 }).then(async (blob) => {
      const body = new Uint8Array(4 + blob.size);
      new DataView(body.buffer).setUint32(0, number);
      body.set(new Uint8Array(await blob.arrayBuffer()), 4);
      if (this.ws === ws && ws.readyState === 1) {
        this.sentAt.set(number, performance.now());
        if (this.sentAt.size > 120) this.sentAt.delete(this.sentAt.keys().next().value);
        ws.send(body);
      }
    }).finally(() => { this.encoding = false; });
  }

  receive(data) {
    if (typeof data !== "string") return this.draw(data);
    let message;
    try { message = JSON.parse(data); } catch { return; }
    if (message.type === "ready") {
      this.hint.textContent = "";
      this.recordButton.disabled = false;
      this.mirrorButton.disabled = false;
      this.applySettings(message.settings);
    } else if (message.type === "settings") {
      this.applySettings(message.settings);
    } else if (message.type === "stats") {
      this.stats.dataset.dropped = message.dropped;
    } else if (message.type === "recording") {
      this.recording = true;
      this.recordButton.textContent = "Stop recording";
      this.recordButton.classList.add("on");
    } else if (message.type === "recorded") {
      this.recording = false;
      this.recordButton.textContent = "Record";
      this.recordButton.classList.remove("on");
      if (message.job) { this.ui.toast("the recording is in the gallery"); this.ui.refreshJobs(message.job); }
    } else if (message.type === "error") {
      if (message.fatal) this.closing = message.message;
      const entry = message.field && this.entries[message.field];
      if (entry) this.ui.showFieldError(entry, message.message);
      else this.error.textContent = message.message;
    }
  }

  async draw(buffer) {
    const number = new DataView(buffer).getUint32(0);
    const bitmap = await createImageBitmap(new Blob([new Uint8Array(buffer, 4)], { type: "image/jpeg" }));
    if (this.canvas.width !== bitmap.width || this.canvas.height !== bitmap.height) {
      this.canvas.width = bitmap.width;
      this.canvas.height = bitmap.height;
      this.fit();
    }
    this.canvas.getContext("2d").drawImage(bitmap, 0, 0);
    bitmap.close();
    const now = performance.now();
    const sent = this.sentAt.get(number);
    if (sent !== undefined) {
      this.latencies.push(now - sent);
      if (this.latencies.length > LATENCIES_KEPT) this.latencies.shift();
    }
    this.frames += 1;
    this.arrivals.push(now);
    while (this.arrivals.length && now - this.arrivals[0] > WINDOW_MS) this.arrivals.shift();
    const fps = this.arrivals.length > 1 ? (this.arrivals.length - 1) / ((now - this.arrivals[0]) / 1000) : 0;
    const sorted = [...this.latencies].sort((a, b) => a - b);
    const median = sorted.length ? sorted[Math.floor(sorted.length / 2)] : null;
    this.canvas.dataset.frames = String(this.frames);
    this.stats.dataset.fps = fps.toFixed(1);
    this.stats.dataset.latency = median === null ? "" : median.toFixed(0);
    this.stats.dataset.latencyP95 = sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.95))].toFixed(0) : "";
    this.stats.textContent = `${fps.toFixed(1)} dreams a second · latency ${median === null ? "…" : `${median.toFixed(0)} ms`}` +
      (this.stats.dataset.dropped ? ` · ${this.stats.dataset.dropped} camera frames skipped` : "");
  }

  // The dream fills its screen, keeping its shape (the canvas holds it at the size it was dreamed).
  fit() {
    const box = this.canvas.parentElement;
    const scale = Math.min(box.clientWidth / this.canvas.width, box.clientHeight / this.canvas.height);
    if (!isFinite(scale) || scale <= 0) return;
    this.canvas.style.width = `${Math.floor(this.canvas.width * scale)}px`;
    this.canvas.style.height = `${Math.floor(this.canvas.height * scale)}px`;
  }

  // -- controls ----------------------------------------------------------------------------------------------------

  value(name) {
    const entry = this.entries[name];
    const value = entry ? this.ui.readField(entry) : undefined;
    return value === undefined ? (entry ? entry.field.default : undefined) : value;
  }

  change(name) {
    const entry = this.entries[name];
    if (!entry) return;
    this.ui.clearError(entry.wrap);
    if (!this.ws || this.ws.readyState !== 1) return; // sent with the others when the camera starts
    this.ws.send(JSON.stringify({ type: "settings", settings: { [name]: this.value(name) } }));
  }

  applySettings(settings) {
    // The first `ready` carries the server's defaults: what the page already changed is sent now.
    const changed = {};
    for (const [name, entry] of Object.entries(this.entries)) {
      const value = this.ui.readField(entry);
      if (value !== undefined && JSON.stringify(value) !== JSON.stringify(settings[name] ?? null)) changed[name] = value;
    }
    if (Object.keys(changed).length && this.ws && this.ws.readyState === 1 && !this.applied) {
      this.applied = true;
      this.ws.send(JSON.stringify({ type: "settings", settings: changed }));
    }
  }

  record() {
    if (!this.ws || this.ws.readyState !== 1) return;
    this.ws.send(JSON.stringify({ type: "record", on: !this.recording }));
  }

  mirror(on) {
    if (on === document.body.classList.contains("live-mirror")) return;
    document.body.classList.toggle("live-mirror", on);
    if (on && this.stage.requestFullscreen) this.stage.requestFullscreen().catch(() => {});
    if (!on && document.fullscreenElement) document.exitFullscreen().catch(() => {});
  }
}
