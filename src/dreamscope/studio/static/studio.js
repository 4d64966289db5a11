// dreamscope studio: the page. Plain ES module, no framework, nothing from the network.
// The server's contract is docs/studio.md; the settings form is built from /api/info's field lists.

import { LiveView } from "./live.js";

const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

const ACTIVE = new Set(["queued", "running"]);
const ENDED = new Set(["done", "failed", "cancelled"]);
const RANK = { queued: 0, running: 1, done: 2, failed: 2, cancelled: 2 };

// How each recipe appears comes from /api/info (the recipe catalogue's form: tab, verb, lead, main): fields named
// in `main` are shown first, in that order; every other field of the recipe goes under "More settings".
const LABELS = { step_size: "Strength", octave_scale: "Octave scale", max_size: "Max size", frame_steps: "Later steps",
                 learning_rate: "Learning rate", diversity_layer: "Diversity layer", vis_size: "Channel picture size",
                 vis_steps: "Channel picture steps", fps: "Frames a second", kind: "Maximize", layers: "Layers",
                 every: "Frames per layer", zoom: "Zoom", rotate: "Turn (°)", param: "Picture prior",
                 accentuate: "Accentuate the picture", closeness: "Closeness", closeness_layer: "Closeness layer",
                 precision: "Precision" };
const KIND_OPTIONS = { kind: ["class", "channel", "neuron", "channels"], param: ["fft", "maco", "pixels"] };

const state = {
  info: null,
  recipe: "dream",
  forms: {},          // recipe -> {form, fields: {name: {field, kind, input, wrap}}, button, error}
  slots: { photo: null, clip: null, guide: null, init: null },  // uploads, shared by the forms
  jobs: new Map(),    // id -> job JSON, newest info
  order: [],          // ids, newest first (from GET /api/jobs)
  focus: null,        // the job shown on the stage
  view: null,         // what the stage shows: {kind: "photo"|"job", ...}
  es: null, esJob: null,
  preview: { busy: false, want: null, shown: null },
  frames: [],         // filmstrip of the focused job: [{frame, url}]
  ladder: null,       // {job: id, layers: [{label, url}]}
  compare: null,      // url of the focused job's input, for "hold to compare"
  refreshTimer: null,
  live: null,         // the Live tab (live.js), when the server offers it
};

// -- talking to the server ------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    const detail = body && body.detail;
    let field = null;
    let message = `the server answered ${status}`;
    if (detail && typeof detail === "object" && !Array.isArray(detail)) {
      field = detail.field || null;
      message = detail.message || message;
    } else if (Array.isArray(detail) && detail.length) {  // a validation error of the framework itself
      const first = detail[0];
      field = Array.isArray(first.loc) ? first.loc[first.loc.length - 1] : null;
      message = first.msg || message;
    } else if (typeof detail === "string") {
      message = detail;
    }
    super(message);
    this.status = status;
    this.field = field;
  }
}

async function api(method, path, body) {
  const options = { method, headers: { Accept: "application/json" } };
  if (body instanceof FormData) {
    options.body = body;
  } else if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, options);
  } catch (error) {
    throw new ApiError(0, { detail: { message: "the studio server cannot be reached; is it still running?" } });
  }
  if (response.status === 204) return null;
  let data = null;
  const text = await response.text();
  if (text) {
    try { data = JSON.parse(text); } catch { data = { detail: text.slice(0, 200) }; }
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

// -- small helpers -------------------------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value === true) node.setAttribute(key, "");
    else node.setAttribute(key, value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function label(name) {
  if (LABELS[name]) return LABELS[name];
  const text = name.replace(/_/g, " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function same(a, b) {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

function shown(value) {
  if (value === null || value === undefined) return "";
  if (Array.isArray(value)) return value.join("x");
  return String(value);
}

function seconds(s) {
  if (s === null || s === undefined || !isFinite(s)) return "";
  if (s < 1) return "under a second left";
  if (s < 90) return `about ${Math.round(s)} s left`;
  if (s < 3600) return `about ${Math.round(s / 60)} min left`;
  return `about ${(s / 3600).toFixed(1)} h left`;
}

function ago(unix) {
  if (!unix) return "";
  const s = Date.now() / 1000 - unix;
  if (s < 45) return "just now";
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return new Date(unix * 1000).toLocaleDateString();
}

function took(job) {
  if (!job.started || !job.finished) return "";
  const s = job.finished - job.started;
  return s < 60 ? `${s.toFixed(1)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

function capital(text) {
  return text ? text.charAt(0).toUpperCase() + text.slice(1) : text;
}

function recipeInputs(recipe) {
  const info = state.info.recipes[recipe] || {};
  return Array.isArray(info.inputs) ? info.inputs : [];
}

function look(recipe) {
  const form = (state.info.recipes[recipe] || {}).form || {};
  const tab = form.tab || capital(recipe);
  return { tab, verb: form.verb || tab, lead: form.lead || "", main: Array.isArray(form.main) ? form.main : [] };
}

// The upload slot an input fills: a recipe's main input is the shared photo (or clip), its others their own slot.
function slotOf(recipe, role) {
  if (role !== "input") return role;
  return ((state.info.recipes[recipe] || {}).input_kinds || {}).input === "video" ? "clip" : "photo";
}

function recipeFields(recipe) {
  const info = state.info.recipes[recipe] || {};
  return Array.isArray(info.fields) ? info.fields : [];
}

function defaultsOf(recipe) {
  return Object.fromEntries(recipeFields(recipe).map((f) => [f.name, f.default]));
}

function modelInfo() {
  const model = state.info.model || {};
  const layers = (model.layers || []).filter((l) => l && l.name && l.stride !== null);
  const defaultLayer = model.default_layer || model.layer || (layers.find((l) => l.default) || {}).name || "";
  const classes = [model.class_names, model.classes].find(Array.isArray) || [];
  return { name: model.name || "", layers, defaultLayer, classes };
}

function isVideoName(name) {
  return /\.(mp4|mov|mkv|webm|m4v)$/i.test(name || "");
}

function isPictureName(name) {
  return /\.(png|jpe?g|webp|gif|tiff?|bmp)$/i.test(name || "");
}

// -- settings fields -----------------------------------------------------------------------------------------

function fieldKind(field) {
  const kind = String(field.kind || "").toLowerCase();
  const options = field.options || field.choices;
  if (/flag|bool/.test(kind) || typeof field.default === "boolean") return "flag";
  if (/choice|enum|select|option/.test(kind) || Array.isArray(options) || KIND_OPTIONS[field.name]) return "choice";
  if (/tile/.test(kind) || field.name === "tile") return "tile";
  if (/size/.test(kind) && field.name === "size") return "size";
  if (field.name === "size") return "size";
  if (/whole|int/.test(kind)) return "whole";
  if (/number|float|real|decimal/.test(kind)) return "number";
  if (typeof field.default === "number") return Number.isInteger(field.default) && !/step_size|rate|zoom|blend|scale/.test(field.name) ? "whole" : "number";
  return "text";
}

const NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

// The form's value of a field as the server takes it; undefined: left empty (the default).
function readField(entry) {
  const { kind, input } = entry;
  if (kind === "flag") return input.checked;
  if (kind === "choice" && entry.segmented) {
    const checked = input.querySelector("input:checked");
    return entry.options[Number(checked ? checked.value : 0)];
  }
  if (kind === "choice") return entry.options[Number(input.value)];
  const text = input.value.trim();
  if (text === "") return entry.field.default === null ? null : undefined;
  if ((kind === "whole" || kind === "number") && entry.field.optional && /^(none|off|no)$/i.test(text)) return null;
  if (kind === "whole" || kind === "number") return NUMBER.test(text) ? Number(text) : text;
  if (kind === "tile") {
    if (/^\d+$/.test(text)) return Number(text);
    return text.toLowerCase();
  }
  if (kind === "size") {
    const parts = text.split(/\s*[x×,]\s*|\s+/).filter(Boolean);
    if (parts.length && parts.every((p) => /^\d+$/.test(p))) return parts.length === 1 ? Number(parts[0]) : parts.map(Number);
    return text;
  }
  return text;
}

function writeField(entry, value) {
  const { kind, input } = entry;
  if (kind === "flag") input.checked = Boolean(value);
  else if (kind === "choice") {
    const index = Math.max(0, entry.options.findIndex((o) => same(o, value)));
    if (entry.segmented) input.querySelectorAll("input").forEach((radio) => { radio.checked = radio.value === String(index); });
    else input.value = String(index);
  } else input.value = value === null && entry.field.default !== null ? "none" : shown(value);
  markChanged(entry);
}

function markChanged(entry) {
  const value = readField(entry);
  const changed = value !== undefined && !same(value, entry.field.default);
  entry.wrap.classList.toggle("changed", changed);
}

function placeholderFor(recipe, field) {
  const model = modelInfo();
  if (field.name === "layer") return `the model's (${model.defaultLayer || "default"})`;
  if (field.name === "channels" && field.default === null) return "all, or 3,17 or strongest:10";
  if (field.name === "layers" && recipe === "probe") return "the last of each stage";
  if (field.name === "layers") return "e.g. stage3.1,stage4.2,stage5.2";
  if (field.name === "every") return "an equal share";
  if (field.name === "max_size") return "none: the photo's own size";
  if (field.name === "target") return "a class name";
  if (field.name === "classes") return "e.g. banana,starfish";
  if (field.name === "grid") return "16";
  if (field.default === null) return "none";
  return "";
}

function buildField(recipe, field) {
  const kind = fieldKind(field);
  const id = `f-${recipe}-${field.name}`;
  const wrap = el("div", { class: `field field-${kind}`, dataset: { field: field.name } });
  const entry = { field, kind, wrap, input: null, options: null, recipe };
  let input;
  if (kind === "flag") {
    input = el("input", { type: "checkbox", id, name: field.name });
    wrap.append(el("label", { class: "check", for: id }, input, el("span", { text: label(field.name) })));
  } else {
    if (kind === "choice") {
      entry.options = field.options || field.choices || KIND_OPTIONS[field.name] || [field.default];
      if (field.default === null) entry.options = [null, ...entry.options];  // decided at run time: "auto"
      entry.segmented = entry.options.length <= 4 && entry.options.every((o) => shown(o).length <= 10);
      if (entry.segmented) {  // a few short options: one click each
        input = el("div", { class: "segmented", role: "radiogroup", id, "aria-label": label(field.name) },
          entry.options.map((option, i) => el("label", { class: "segment" },
            el("input", { type: "radio", name: field.name, value: String(i) }), el("span", { text: option === null ? "auto" : shown(option) }))));
        wrap.classList.add("wide");
      } else {
        input = el("select", { id, name: field.name },
          entry.options.map((option, i) => el("option", { value: String(i), text: shown(option) })));
      }
    } else {
      const numeric = kind === "whole" || kind === "number";
      input = el("input", { type: "text", id, name: field.name, autocomplete: "off", spellcheck: "false",
                            inputmode: numeric ? (kind === "whole" ? "numeric" : "decimal") : null,
                            placeholder: placeholderFor(recipe, field) });
    }
    const head = el(entry.segmented ? "span" : "label", { class: "field-label", for: entry.segmented ? null : id }, label(field.name), rangeOf(field));
    const reset = el("button", { type: "button", class: "reset", title: `back to the default (${shown(field.default) || "none"})`,
                                 "aria-label": `reset ${label(field.name)}`, text: "↺" });
    reset.addEventListener("click", () => { writeField(entry, field.default); clearError(entry.wrap); });
    wrap.append(el("div", { class: "field-head" }, head, reset));
    const row = el("div", { class: "field-row" }, input);
    if (field.name === "seed") {
      row.append(el("button", { type: "button", class: "icon", title: "a new random seed", "aria-label": "random seed",
                                onclick: () => { input.value = String(Math.floor(Math.random() * 1e9)); markChanged(entry); } }, dice()));
    }
    wrap.append(row);
  }
  entry.input = input;
  if (field.help) {
    wrap.title = field.help;
    wrap.append(el("p", { class: "help", text: field.help }));
  }
  wrap.append(el("p", { class: "field-error", role: "alert" }));
  input.addEventListener("input", () => { markChanged(entry); clearError(wrap); });
  input.addEventListener("change", () => { markChanged(entry); clearError(wrap); });
  writeField(entry, field.default);
  return entry;
}

function rangeOf(field) {
  if (typeof field.min !== "number" || typeof field.max !== "number") return null;
  const big = (n) => (n >= 1e15 ? "any" : n >= 10000 && n % 1000 === 0 ? `${n / 1000}k` : String(n));
  const low = field.min_exclusive ? `>${field.min}` : String(field.min);
  const high = field.max_exclusive ? `<${field.max}` : big(field.max);
  if (field.name === "seed") return null;
  return el("span", { class: "range", text: `${low}–${high}` });
}

function dice() {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 20 20");
  svg.setAttribute("aria-hidden", "true");
  svg.innerHTML = '<rect x="3" y="3" width="14" height="14" rx="3.5" fill="none" stroke="currentColor" stroke-width="1.5"/>' +
    '<circle cx="7" cy="7" r="1.3" fill="currentColor"/><circle cx="13" cy="13" r="1.3" fill="currentColor"/>' +
    '<circle cx="10" cy="10" r="1.3" fill="currentColor"/>';
  return svg;
}

// -- the forms, one per recipe -------------------------------------------------------------------------------

function buildForms() {
  const host = $("#forms");
  const tabs = $("#modes");
  const names = Object.keys(state.info.recipes).filter((name) => recipeFields(name).length);  // in the catalogue's order
  for (const recipe of names) {
    const shown = look(recipe);
    tabs.append(el("button", { type: "button", role: "tab", class: "mode", id: `tab-${recipe}`, dataset: { recipe },
                               "aria-controls": `form-${recipe}`, onclick: () => selectRecipe(recipe) }, shown.tab));
    const form = el("form", { class: "recipe-form", id: `form-${recipe}`, dataset: { recipe }, novalidate: true, hidden: true,
                              role: "tabpanel", "aria-labelledby": `tab-${recipe}` });
    form.append(el("p", { class: "lead", text: shown.lead }));
    const entry = { form, fields: {}, recipe };
    state.forms[recipe] = entry;

    // inputs: the photo (or clip) first, the guide / init picture later
    const roles = recipeInputs(recipe);
    if (roles.includes("input")) form.append(dropZone(recipe, slotOf(recipe, "input"), "input"));
    const presets = presetList().filter((p) => p.recipe === recipe);
    if (presets.length) {
      form.append(el("div", { class: "presets" }, el("span", { class: "presets-label", text: "Presets" }),
        presets.map((p) => el("button", { type: "button", class: "chip", title: p.help || null, dataset: { preset: p.name },
                                          onclick: (event) => applyPreset(recipe, p, event.currentTarget) }, p.label || p.name))));
    }

    const fields = recipeFields(recipe);
    const main = shown.main.map((name) => fields.find((f) => f.name === name)).filter(Boolean);
    const rest = fields.filter((f) => !shown.main.includes(f.name));
    const grid = el("div", { class: "fields" });
    for (const field of main) {
      const f = buildField(recipe, field);
      entry.fields[field.name] = f;
      grid.append(f.wrap);
      if (field.name === "layer") {
        f.wrap.classList.add("wide");
        f.input.setAttribute("list", "layer-names");
        const probe = el("button", { type: "button", class: "ghost small", id: recipe === "dream" ? "see-layers" : null,
                                     dataset: { action: "see-layers" }, onclick: () => seeLayers(recipe) }, "What each layer sees");
        f.wrap.querySelector(".field-head").append(probe);
        f.input.addEventListener("input", () => channelHint(recipe));
      }
      if (["channels", "target", "layers", "classes"].includes(field.name)) f.wrap.classList.add("wide");
      if (field.name === "target") f.input.setAttribute("list", "class-names");
      if (field.name === "layers") commaList(f, () => modelInfo().layers.map((l) => l.name));
      if (field.name === "classes") commaList(f, () => modelInfo().classes);
    }
    form.append(grid);
    for (const role of roles.filter((r) => r !== "input")) form.append(dropZone(recipe, role, role));
    if (rest.length) {
      const more = el("details", { class: "more" }, el("summary", {}, "More settings"));
      const moreGrid = el("div", { class: "fields" });
      for (const field of rest) {
        const f = buildField(recipe, field);
        entry.fields[field.name] = f;
        if (["model", "weights", "diversity_layer", "layers", "channels", "layer"].includes(field.name)) f.wrap.classList.add("wide");
        moreGrid.append(f.wrap);
      }
      more.append(moreGrid);
      form.append(more);
    }
    entry.error = el("p", { class: "form-error", role: "alert" });
    entry.button = el("button", { type: "submit", class: "primary go", dataset: { recipe } }, shown.verb);
    form.append(el("div", { class: "actions" },
      entry.button,
      el("button", { type: "button", class: "ghost small", onclick: () => resetForm(recipe) }, "Reset all")), entry.error);
    form.addEventListener("submit", (event) => { event.preventDefault(); submit(recipe); });
    form.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); submit(recipe); }
    });
    host.append(form);
    if (recipe === "visualize") wireVisualize(entry);
    channelHint(recipe);
  }
  const model = modelInfo();
  document.body.append(el("datalist", { id: "layer-names" },
    model.layers.map((l) => el("option", { value: l.name, label: `${l.channels} channels, stride ${l.stride}` }))));
  document.body.append(el("datalist", { id: "class-names" }, model.classes.map((c) => el("option", { value: c }))));
  document.body.append(el("datalist", { id: "unit-names" },
    model.layers.map((l) => el("option", { value: `${l.name}:0`, label: `${l.channels} channels: ${l.name}:0 to ${l.name}:${l.channels - 1}` }))));
}

// Autocomplete for a comma-separated list (layers A,B,C; classes A,B): the suggestions complete the last item.
function commaList(entry, names) {
  const id = `list-${entry.recipe}-${entry.field.name}`;
  const list = el("datalist", { id });
  document.body.append(list);
  entry.input.setAttribute("list", id);
  const update = () => {
    const text = entry.input.value;
    const cut = text.lastIndexOf(",") + 1;
    const head = text.slice(0, cut);
    const tail = text.slice(cut).trim().toLowerCase();
    const found = names().filter((name) => name.toLowerCase().includes(tail)).slice(0, 40);
    list.replaceChildren(...found.map((name) => el("option", { value: head + name })));
  };
  entry.input.addEventListener("input", update);
  entry.input.addEventListener("focus", update);
}

function wireVisualize(entry) {
  const kind = entry.fields.kind;
  const target = entry.fields.target;
  if (!kind || !target) return;
  const update = () => {
    const value = readField(kind);
    const list = value === "class" ? "class-names" : value === "channels" ? "layer-names" : "unit-names";
    target.input.setAttribute("list", list);
    target.input.placeholder = value === "class" ? "a class name, e.g. banana" : value === "channels" ? "a layer, e.g. stage4.2"
      : "LAYER:INDEX, e.g. stage5.2:17";
    const grid = entry.fields.grid;
    if (grid) grid.wrap.hidden = value !== "channels" && readField(grid) == null;
    const samples = entry.fields.samples;
    if (samples) samples.wrap.hidden = value === "channels" && same(readField(samples), samples.field.default);
  };
  kind.input.addEventListener("change", update);
  update();
}

function channelHint(recipe) {
  const entry = state.forms[recipe];
  if (!entry || !entry.fields.channels || !entry.fields.layer) return;
  const model = modelInfo();
  const typed = (readField(entry.fields.layer) || model.defaultLayer || "").split(",")[0].split("=")[0].trim();
  const layer = model.layers.find((l) => l.name === typed);
  const help = entry.fields.channels.wrap.querySelector(".help");
  if (help) help.textContent = layer ? `${layer.name} has ${layer.channels} channels (0 to ${layer.channels - 1}); pick some, like 3,17, or strongest:10`
    : entry.fields.channels.field.help;
}

function presetList() {
  const raw = state.info.presets || [];
  const list = Array.isArray(raw) ? raw : Object.entries(raw).map(([name, value]) => ({ name, ...(value || {}) }));
  return list.map((p) => {
    const settings = { ...(p.settings || p.changes || p.values || {}) };
    const recipe = p.recipe || settings.recipe || "dream";
    delete settings.recipe;
    return { name: p.name || p.label || "preset", label: p.label || p.name, recipe, settings, help: p.help || p.description || "" };
  });
}

function applyPreset(recipe, preset, button) {
  const entry = state.forms[recipe];
  for (const f of Object.values(entry.fields)) writeField(f, f.field.default);
  for (const [name, value] of Object.entries(preset.settings)) if (entry.fields[name]) writeField(entry.fields[name], value);
  $$(".chip", entry.form).forEach((chip) => chip.classList.toggle("on", chip === button));
  clearErrors(recipe);
  channelHint(recipe);
  const more = entry.form.querySelector(".more");
  if (more && Object.keys(preset.settings).some((n) => entry.fields[n]?.wrap.closest(".more"))) more.open = true;
}

function resetForm(recipe) {
  const entry = state.forms[recipe];
  for (const f of Object.values(entry.fields)) writeField(f, f.field.default);
  $$(".chip", entry.form).forEach((chip) => chip.classList.remove("on"));
  clearErrors(recipe);
  channelHint(recipe);
}

function loadSettings(job) {
  const recipe = job.recipe;
  const entry = state.forms[recipe];
  if (!entry) return;
  for (const f of Object.values(entry.fields)) {
    writeField(f, job.settings && f.field.name in job.settings ? job.settings[f.field.name] : f.field.default);
  }
  const inputs = job.inputs || {};
  for (const [role, id] of Object.entries(inputs)) {
    const slot = slotOf(recipe, role);
    setSlot(slot, { id, kind: slot === "clip" ? "video" : "picture", name: `the ${role} of ${job.id}` });
  }
  $$(".chip", entry.form).forEach((chip) => chip.classList.remove("on"));
  const more = entry.form.querySelector(".more");
  if (more && Object.values(entry.fields).some((f) => f.wrap.classList.contains("changed") && f.wrap.closest(".more"))) more.open = true;
  selectRecipe(recipe);
  channelHint(recipe);
  toast(`Loaded the settings of ${recipe} ${job.id}: change what you like, then ${look(recipe).verb.toLowerCase()} again`);
}

function selectRecipe(recipe) {
  if (!state.forms[recipe] && !(recipe === "live" && state.live)) return;
  state.recipe = recipe;
  for (const [name, entry] of Object.entries(state.forms)) {
    entry.form.hidden = name !== recipe;
    const tab = $(`#tab-${name}`);
    tab.classList.toggle("on", name === recipe);
    tab.setAttribute("aria-selected", String(name === recipe));
  }
  if (state.live) {
    const tab = $("#tab-live");
    tab.classList.toggle("on", recipe === "live");
    tab.setAttribute("aria-selected", String(recipe === "live"));
    state.live.show(recipe === "live");  // leaving the tab stops the camera and frees the server's CPU
  }
  if (recipe !== "live" && (!state.focus || !state.jobs.get(state.focus))) showIdle();
}

// The Live tab: its controls are LiveSettings' fields (GET /api/info's live.fields), changed while it runs.
function buildLive() {
  const live = state.info.live;
  if (!live || !Array.isArray(live.fields)) return;
  state.live = new LiveView({ el, $, buildField, readField, clearError, showFieldError, toast,
                              refreshJobs: () => refreshJobs() }, live.fields);
  $("#modes").append(el("button", { type: "button", role: "tab", class: "mode", id: "tab-live", dataset: { recipe: "live" },
                                    "aria-controls": "form-live", onclick: () => selectRecipe("live") }, "Live"));
  $("#forms").append(state.live.panel);
  $("#stage").append(state.live.stage);
}

function showFieldError(entry, message) {
  const wrap = entry.wrap;
  wrap.classList.add("invalid");
  wrap.querySelector(".field-error").textContent = message;
  const input = wrap.querySelector("input:not([type=file]):not([type=radio]), select, .segmented");
  if (input) input.setAttribute("aria-invalid", "true");
  const more = wrap.closest("details");
  if (more) more.open = true;
}

// -- uploads: drop zones bound to shared slots ---------------------------------------------------------------

function dropZone(recipe, slot, role) {
  const video = slot === "clip";
  const id = `file-${recipe}-${role}`;
  const file = el("input", { type: "file", id, class: "file", accept: video ? "video/*,.gif" : "image/*", dataset: { slot } });
  const zone = el("div", { class: `drop drop-${role === "input" ? "main" : "extra"}`, dataset: { slot, role } });
  const title = ((state.info.recipes[recipe] || {}).input_labels || {})[role] || label(role);
  const hint = role === "input" ? (video ? "Drop a clip here, or" : "Drop a photo here, or")
    : role === "guide" ? "optional: pulls the dream toward its features;" : "optional: start from a photo, not noise;";
  const thumb = el("div", { class: "drop-thumb" });
  const body = el("div", { class: "drop-body" },
    el("div", { class: "drop-title" }, title),
    el("div", { class: "drop-text" }, hint, " ", el("label", { for: id, class: "link" }, "choose a file")),
    el("div", { class: "drop-name" }),
    el("p", { class: "field-error drop-error", role: "alert" }));
  zone.append(file, thumb, body);
  if (role !== "input") {
    zone.append(el("button", { type: "button", class: "icon clear", title: "remove", "aria-label": `remove the ${title.toLowerCase()}`,
                               onclick: () => setSlot(slot, null) }, "×"));
  }
  if (role === "input" && !video && samplesList().length) {
    body.append(el("div", { class: "samples" }, "or try ",
      samplesList().map((name, i) => [i ? " · " : "", el("button", { type: "button", class: "link", dataset: { sample: name },
                                                                       onclick: () => useSample(name, zone) }, name)])));
  }
  file.addEventListener("change", () => {
    if (file.files && file.files[0]) upload(file.files[0], slot, zone);
    file.value = "";
  });
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    event.stopPropagation();
    zone.classList.remove("over");
    $("#drop-overlay").hidden = true;
    const dropped = event.dataTransfer && event.dataTransfer.files[0];
    if (dropped) upload(dropped, slot, zone);
  });
  return zone;
}

function samplesList() {
  const raw = state.info.samples || [];
  return (Array.isArray(raw) ? raw : Object.keys(raw)).map((s) => (typeof s === "string" ? s : s.name)).filter(Boolean);
}

async function upload(file, slot, zone) {
  zone.classList.add("busy");
  setZoneError(zone, "");
  const body = new FormData();
  body.append("file", file, file.name);
  try {
    const made = await api("POST", "/api/uploads", body);
    const wanted = slot === "clip" ? "video" : "picture";
    if (made.kind && made.kind !== wanted) {
      // A video dropped on a photo zone (or the other way round): put it where it belongs.
      const other = made.kind === "video" ? "clip" : "photo";
      setSlot(other, made);
      const fits = (name) => recipeInputs(name).includes("input") && slotOf(name, "input") === other;
      const found = fits(state.recipe) ? null : Object.keys(state.forms).find(fits);  // the first tab that takes it
      if (found) selectRecipe(found);
      return;
    }
    setSlot(slot, made);
  } catch (error) {
    setZoneError(zone, error.message);
  } finally {
    zone.classList.remove("busy");
  }
}

async function useSample(name, zone) {
  zone.classList.add("busy");
  setZoneError(zone, "");
  try {
    setSlot("photo", await api("POST", `/api/samples/${encodeURIComponent(name)}`));
  } catch (error) {
    setZoneError(zone, error.message);
  } finally {
    zone.classList.remove("busy");
  }
}

function setZoneError(zone, message) {
  const box = zone.querySelector(".drop-error");
  box.textContent = message;
  zone.classList.toggle("invalid", Boolean(message));
}

function setSlot(slot, made) {
  state.slots[slot] = made;
  for (const zone of $$(`.drop[data-slot="${slot}"]`)) {
    const thumb = zone.querySelector(".drop-thumb");
    thumb.replaceChildren();
    zone.classList.toggle("filled", Boolean(made));
    setZoneError(zone, "");
    const name = zone.querySelector(".drop-name");
    if (!made) { name.textContent = ""; continue; }
    const url = `/api/uploads/${made.id}`;
    if (made.kind === "video") thumb.append(el("video", { src: `${url}#t=0.1`, muted: true, preload: "metadata", playsinline: true }));
    else thumb.append(el("img", { src: url, alt: "" }));
    const size = made.width && made.height ? ` · ${made.width}×${made.height}` : "";
    const frames = made.kind === "video" && made.frames ? ` · ${made.frames} frames` : "";
    name.textContent = `${made.name || "upload"}${size}${frames}`;
  }
  if (slot === "photo" || slot === "clip") {
    const zones = $$(`.drop[data-role="input"]`);
    zones.forEach((zone) => clearError(zone));
    if (!state.focus || ENDED.has(state.jobs.get(state.focus)?.state)) { state.focus = null; stopWatching(); showIdle(); }
  }
}

// Drop anywhere on the page: the file goes to the open form's main slot.
function wideDrop() {
  let depth = 0;
  const overlay = $("#drop-overlay");
  const hasFiles = (event) => event.dataTransfer && Array.from(event.dataTransfer.types || []).includes("Files");
  window.addEventListener("dragenter", (event) => { if (hasFiles(event)) { depth++; overlay.hidden = false; } });
  window.addEventListener("dragleave", () => { depth = Math.max(0, depth - 1); if (!depth) overlay.hidden = true; });
  window.addEventListener("dragover", (event) => { if (hasFiles(event)) event.preventDefault(); });
  window.addEventListener("drop", (event) => {
    event.preventDefault();
    depth = 0;
    overlay.hidden = true;
    const file = event.dataTransfer && event.dataTransfer.files[0];
    if (!file) return;
    let recipe = state.recipe;
    if (!recipeInputs(recipe).includes("input") && !recipeInputs(recipe).includes("init")) recipe = "dream";
    if (recipe !== state.recipe && state.recipe === "live") selectRecipe(recipe);
    const form = state.forms[recipe].form;
    const zone = $(`.drop[data-role="input"]`, form) || $(`.drop[data-role="init"]`, form);
    if (zone) upload(file, zone.dataset.slot, zone);
  });
}

// -- submitting ----------------------------------------------------------------------------------------------

function clearError(wrap) {
  wrap.classList.remove("invalid");
  const box = wrap.querySelector(":scope > .field-error") || wrap.querySelector(".field-error");
  if (box) box.textContent = "";
  const input = wrap.querySelector("input:not([type=file]):not([type=radio]), select, .segmented");
  if (input) input.removeAttribute("aria-invalid");
}

function clearErrors(recipe) {
  const entry = state.forms[recipe];
  $$(".field.invalid, .drop.invalid", entry.form).forEach((wrap) => clearError(wrap));
  entry.error.textContent = "";
}

// Show a server message next to the field it names (or the upload, or under the button).
function showError(recipe, error) {
  const entry = state.forms[recipe];
  const field = error.field;
  const wrap = field && (entry.fields[field]?.wrap || $(`.drop[data-role="${field}"]`, entry.form));
  if (wrap) {
    wrap.classList.add("invalid");
    const box = wrap.querySelector(".field-error");
    box.textContent = `${error.message}`;
    const input = wrap.querySelector("input:not([type=file]):not([type=radio]), select, .segmented");
    if (input) input.setAttribute("aria-invalid", "true");
    const more = wrap.closest("details");
    if (more) more.open = true;
    wrap.scrollIntoView({ block: "nearest", behavior: "smooth" });
    if (input) input.focus({ preventScroll: true });
  } else {
    entry.error.textContent = field ? `${field}: ${error.message}` : error.message;
  }
}

function changedSettings(recipe) {
  const entry = state.forms[recipe];
  const settings = {};
  for (const [name, f] of Object.entries(entry.fields)) {
    const value = readField(f);
    if (value === undefined || same(value, f.field.default)) continue;
    settings[name] = value;
  }
  return settings;
}

function inputsFor(recipe) {
  const inputs = {};
  for (const role of recipeInputs(recipe)) {
    const slot = slotOf(recipe, role);
    if (state.slots[slot]) inputs[role] = state.slots[slot].id;
  }
  return inputs;
}

async function submit(recipe, extra = {}) {
  const entry = state.forms[recipe];
  clearErrors(recipe);
  const settings = { ...changedSettings(recipe), ...extra };
  const inputs = inputsFor(recipe);
  entry.button.disabled = true;
  try {
    const job = await api("POST", "/api/jobs", { recipe, settings, inputs });
    remember(job);
    focusJob(job.id);
    renderLists();
    scheduleRefresh(300);
  } catch (error) {
    showError(recipe, error);
  } finally {
    entry.button.disabled = false;
  }
}

// -- "what each layer sees": a fast probe, its dreams as thumbnails that pick the layer ----------------------

function probePreset() {
  const probes = presetList().filter((p) => p.recipe === "probe");
  return probes.find((p) => /fast|quick|layer|glance|see/i.test(p.name)) || probes[0] ||
    { name: "quick probe", recipe: "probe", settings: { max_size: 256, octaves: 2, steps: 5, channels: 0 } };
}

async function seeLayers(recipe) {
  const entry = state.forms[recipe];
  const clip = slotOf(recipe, "input") === "clip";
  const photo = state.slots.photo;
  clearErrors(recipe);
  if (!photo) {
    showError(recipe, { field: "input", message: clip ? "the layer probe needs a photo: use the Dream tab's photo" : "choose a photo first: the probe dreams it at each layer" });
    return;
  }
  const preset = probePreset();
  try {
    const job = await api("POST", "/api/jobs", { recipe: "probe", settings: preset.settings, inputs: { input: photo.id } });
    remember(job);
    state.ladder = { job: job.id, recipe, layers: [] };
    renderLadder();
    renderLists();
    scheduleRefresh(300);
  } catch (error) {
    showError(recipe, error);
  }
}

function renderLadder() {
  const box = $("#ladder");
  const ladder = state.ladder;
  if (!ladder) { box.hidden = true; return; }
  const job = state.jobs.get(ladder.job);
  box.hidden = false;
  const status = $("#ladder-status");
  const row = $("#ladder-row");
  if (!job) { status.textContent = ""; return; }
  if (job.state === "done" && job.result) {
    status.textContent = "";
    const files = (job.result.files || []).filter((f) => isPictureName(f.name || f.url) && f.label && !/sheet/i.test(f.label));
    const layerNames = new Set(modelInfo().layers.map((l) => l.name));
    const layers = files.filter((f) => layerNames.size === 0 || layerNames.has(f.label));
    if (row.dataset.job === job.id) return markLadder();
    row.dataset.job = job.id;
    row.replaceChildren(...(layers.length ? layers : files).map((f) => el("button", {
      type: "button", class: "rung", dataset: { layer: f.label }, title: `dream with ${f.label}`,
      onclick: () => pickLayer(f.label) }, el("img", { src: f.url, alt: `the photo dreamed at ${f.label}`, loading: "lazy" }),
      el("span", { text: f.label }))));
    markLadder();
  } else if (job.state === "failed") {
    status.textContent = `the probe failed: ${job.error || "no message"}`;
    row.replaceChildren();
    row.dataset.job = "";
  } else if (job.state === "cancelled") {
    status.textContent = "cancelled";
  } else {
    const pct = Math.round((job.fraction || 0) * 100);
    status.textContent = job.state === "queued" ? "waiting in the queue…" : `dreaming each layer… ${pct}%`;
    if (row.dataset.job !== `pending-${job.id}`) {
      row.dataset.job = `pending-${job.id}`;
      row.replaceChildren(...Array.from({ length: 6 }, () => el("div", { class: "rung placeholder" })));
    }
  }
}

function pickLayer(name) {
  const recipe = state.ladder?.recipe && state.forms[state.ladder.recipe]?.fields.layer ? state.ladder.recipe : "dream";
  const entry = state.forms[recipe];
  if (!entry || !entry.fields.layer) return;
  writeField(entry.fields.layer, name);
  clearError(entry.fields.layer.wrap);
  selectRecipe(recipe);
  channelHint(recipe);
  markLadder();
}

function markLadder() {
  const entry = state.forms[state.ladder?.recipe] || state.forms.dream;
  const current = entry?.fields.layer ? readField(entry.fields.layer) : null;
  $$("#ladder-row .rung").forEach((rung) => rung.classList.toggle("on", rung.dataset.layer === current));
}

// -- jobs: the list, the focused one, its events ------------------------------------------------------------

function remember(job) {
  const known = state.jobs.get(job.id);
  state.jobs.set(job.id, job);
  if (!known && !state.order.includes(job.id)) state.order.unshift(job.id);
}

async function refreshJobs() {
  try {
    const list = await api("GET", "/api/jobs");
    const ids = new Set(list.map((j) => j.id));
    for (const id of Array.from(state.jobs.keys())) if (!ids.has(id)) state.jobs.delete(id);
    for (const job of list) {
      const known = state.jobs.get(job.id);
      // the event stream may be ahead of the list (which was asked for earlier): keep the newer of the two
      if (known && RANK[known.state] > RANK[job.state]) continue;
      if (known && known.state === job.state && (known.fraction || 0) > (job.fraction || 0)) continue;
      state.jobs.set(job.id, job);
    }
    state.order = list.map((j) => j.id);
    setMeta();
    renderLists();
    if (state.ladder) renderLadder();
    const focused = state.focus && state.jobs.get(state.focus);
    if (focused) {
      if (ACTIVE.has(focused.state)) watch(focused);
      if (!state.es || state.esJob !== focused.id) renderFocus();
    } else if (state.focus) {
      state.focus = null;
      showIdle();
    }
  } catch (error) {
    setMeta(error.message);
  }
  scheduleRefresh();
}

function scheduleRefresh(delay) {
  clearTimeout(state.refreshTimer);
  const busy = Array.from(state.jobs.values()).some((j) => ACTIVE.has(j.state));
  state.refreshTimer = setTimeout(refreshJobs, delay ?? (busy ? 1500 : 6000));
}

function watch(job) {
  if (state.es && state.esJob === job.id) return;
  stopWatching();
  const source = new EventSource(`/api/jobs/${job.id}/events`);
  state.es = source;
  state.esJob = job.id;
  source.addEventListener("progress", (event) => onJob(JSON.parse(event.data)));
  source.addEventListener("end", (event) => {
    // The server closes the stream after `end`: let it (closing first would abort the request), and close this
    // side when it has, before the browser reconnects (the error event below), or in a moment at the latest.
    source.ended = true;
    if (state.es === source) { state.es = null; state.esJob = null; }
    setTimeout(() => source.close(), 2500);
    const job = JSON.parse(event.data);
    if (job.deleted || !job.state) forget(job.id);
    else onJob(job);
    scheduleRefresh(100);
  });
  source.addEventListener("error", () => {
    source.close();
    if (source.ended) return;
    // The stream broke (server restarted, job deleted): stop here; the list refresh watches again if needed.
    if (state.es === source) stopWatching();
    scheduleRefresh(1500);
  });
}

function stopWatching() {
  if (state.es) state.es.close();
  state.es = null;
  state.esJob = null;
}

function onJob(job) {
  const before = state.jobs.get(job.id);
  remember(job);
  if (job.id === state.focus) renderFocus();
  if (state.ladder && state.ladder.job === job.id) renderLadder();
  if (!before || before.state !== job.state) renderLists();
  else updateQueueItem(job);
}

function forget(id) {
  state.jobs.delete(id);
  state.order = state.order.filter((x) => x !== id);
  if (state.focus === id) { state.focus = null; stopWatching(); showIdle(); }
  if (state.ladder && state.ladder.job === id) { state.ladder = null; renderLadder(); }
  renderLists();
}

function focusJob(id) {
  if (state.recipe === "live") {  // a job from the gallery: leave the live view for the job's own tab
    const job = state.jobs.get(id);
    selectRecipe(job && state.forms[job.recipe] ? job.recipe : "dream");
  }
  if (state.focus !== id) {
    state.frames = [];
    state.preview.shown = null;
    state.preview.want = null;
    renderFilmstrip();
  }
  state.focus = id;
  const job = state.jobs.get(id);
  if (!job) return;
  if (ACTIVE.has(job.state)) watch(job);
  else if (state.esJob && state.esJob !== id) stopWatching();
  renderFocus(true);
  $$(".gallery-item, .queue-item").forEach((item) => item.classList.toggle("on", item.dataset.jobId === id));
}

async function cancelJob(id) {
  try {
    onJob(await api("POST", `/api/jobs/${id}/cancel`));
  } catch (error) {
    toast(error.message);
  }
  scheduleRefresh(200);
}

async function again(id) {
  try {
    const job = await api("POST", `/api/jobs/${id}/again`, {});
    remember(job);
    focusJob(job.id);
    renderLists();
  } catch (error) {
    toast(error.message);
  }
  scheduleRefresh(300);
}

async function continueZoom(id, frames) {
  try {
    const job = await api("POST", `/api/jobs/${id}/continue`, { frames });
    remember(job);
    focusJob(job.id);
    renderLists();
    return null;
  } catch (error) {
    scheduleRefresh(300);
    return error;
  } finally {
    scheduleRefresh(300);
  }
}

async function removeJob(id) {
  try {
    await api("DELETE", `/api/jobs/${id}`);
    forget(id);
  } catch (error) {
    toast(error.message);
  }
}

// -- the stage -----------------------------------------------------------------------------------------------

const stage = {
  get img() { return $("#stage-image"); },
  get video() { return $("#stage-video"); },
  get report() { return $("#stage-report"); },
};

function show(kind, url) {
  const { img, video, report } = stage;
  $("#stage-empty").hidden = kind !== "empty";
  $("#frame").hidden = kind === "empty";
  const frame = $("#frame");
  frame.classList.remove("frame-image", "frame-video", "frame-report", "frame-empty");
  frame.classList.add(`frame-${kind}`);
  img.hidden = kind !== "image";
  video.hidden = kind !== "video";
  report.hidden = kind !== "report";
  if (kind !== "video" && video.getAttribute("src")) { video.pause(); video.removeAttribute("src"); video.load(); }
  if (kind !== "report" && report.getAttribute("src")) report.removeAttribute("src");
  if (kind === "image" && img.getAttribute("src") !== url) img.src = url;
  if (kind === "video" && video.getAttribute("src") !== url) { video.src = url; video.play().catch(() => {}); }
  if (kind === "report" && report.getAttribute("src") !== url) report.src = url;
  fit();
}

// The picture fills the stage, keeping its shape: small previews are shown large too (up to 6x).
function fit() {
  const canvas = $("#canvas");
  const width = canvas.clientWidth - 16;
  const height = canvas.clientHeight - 16;
  for (const media of [stage.img, stage.video]) {
    if (media.hidden) continue;
    const w = media.naturalWidth || media.videoWidth;
    const h = media.naturalHeight || media.videoHeight;
    if (!w || !h || !width || !height) continue;
    const scale = Math.min(width / w, height / h, 6);
    media.style.width = `${Math.floor(w * scale)}px`;
    media.style.height = `${Math.floor(h * scale)}px`;
  }
}

function note(text, tone = "") {
  const box = $("#stage-note");
  box.hidden = !text;
  box.textContent = text || "";
  box.className = `stage-note ${tone}`;
}

function showIdle() {
  stopWatchingIfIdle();
  const recipe = state.recipe;
  const slot = recipeInputs(recipe).includes("input") ? slotOf(recipe, "input") : null;
  const made = slot && state.slots[slot];
  $("#progress").hidden = true;
  $("#caption").hidden = true;
  $("#compare").hidden = true;
  note("");
  if (made) show(made.kind === "video" ? "video" : "image", `/api/uploads/${made.id}`);
  else {
    show("empty");
    const title = $(".stage-empty-title");
    const text = $(".stage-empty-text");
    if (slot === "clip") { title.textContent = "Drop a video clip"; text.textContent = "each frame is dreamed, carried along the motion"; }
    else if (!slot) { title.textContent = "A picture grown from noise"; text.textContent = "name a class or a channel on the left: no photo needed"; }
    else { title.textContent = "Drop a photo anywhere"; text.textContent = "or choose one on the left, and let the network dream into it"; }
  }
  $$(".gallery-item, .queue-item").forEach((item) => item.classList.remove("on"));
}

function stopWatchingIfIdle() {
  if (!state.focus && state.es) stopWatching();
}

function inputUrl(job) {
  const id = job.inputs && (job.inputs.input || job.inputs.init);
  if (!id) return null;
  return { url: `/api/uploads/${id}`, video: slotOf(job.recipe, "input") === "clip" && Boolean(job.inputs.input) };
}

function renderFocus(fresh = false) {
  const job = state.jobs.get(state.focus);
  if (!job) return;
  const progress = $("#progress");
  const running = ACTIVE.has(job.state);
  progress.hidden = !running;
  $("#frame").classList.toggle("working", running);
  if (running) {
    const pct = Math.max(0, Math.min(100, (job.fraction || 0) * 100));
    $("#progress-fill").style.width = `${pct.toFixed(1)}%`;
    $("#progress-bar").setAttribute("aria-valuenow", pct.toFixed(0));
    const ahead = job.state === "queued" ? Array.from(state.jobs.values()).filter((j) => ACTIVE.has(j.state) && j.created < job.created).length : 0;
    $("#progress-stage").textContent = job.state === "queued"
      ? `Waiting in the queue${ahead ? ` (${ahead} ahead)` : ""}…`
      : capital(job.stage || "starting…");
    $("#progress-eta").textContent = job.state === "running" ? seconds(job.eta_s) : "";
    $("#cancel").onclick = () => cancelJob(job.id);
    if (job.preview !== null && job.preview !== undefined) wantPreview(job);
    else if (fresh || !state.preview.shown) {
      const input = inputUrl(job);
      if (input && !input.video) show("image", input.url);
      else if (input && input.video) show("video", input.url);
      else show("empty");
    }
    note("");
  } else if (job.state === "done") {
    showResult(job);
  } else {
    const failed = job.state === "failed";
    if (!(state.preview.shown || "").startsWith(`${job.id}:`)) {
      const input = inputUrl(job);
      if (input) show(input.video ? "video" : "image", input.url); else show("empty");
    }
    note(failed ? "Failed: the reason is below" : "Cancelled", failed ? "bad" : "");
  }
  renderCaption(job);
}

function wantPreview(job, ended = false) {
  const key = `${job.id}:${job.preview}`;
  if (state.preview.shown === key) return;
  state.preview.want = { id: job.id, v: job.preview, key, frame: frameOf(job.stage), ended };
  if (!state.preview.busy) pumpPreview();
}

function pumpPreview() {
  const want = state.preview.want;
  if (!want) return;
  state.preview.want = null;
  state.preview.busy = true;
  const url = `/api/jobs/${want.id}/preview?v=${want.v}`;
  const loader = new Image();
  loader.onload = () => {
    state.preview.busy = false;
    const job = state.jobs.get(want.id);
    if (state.focus === want.id && job && (ACTIVE.has(job.state) || want.ended)) {
      show("image", url);
      stage.img.dataset.preview = String(want.v);
      state.preview.shown = want.key;
      if (want.frame !== null) addFrame(want.frame, url);
    }
    pumpPreview();
  };
  loader.onerror = () => { state.preview.busy = false; pumpPreview(); };
  loader.src = url;
}

function frameOf(stageText) {
  const match = /frame (\d+) of (\d+)/.exec(stageText || "");
  return match ? Number(match[1]) : null;
}

function addFrame(frame, url) {
  const last = state.frames[state.frames.length - 1];
  if (last && last.frame === frame) { last.url = url; }
  else state.frames.push({ frame, url });
  if (state.frames.length > 40) state.frames.shift();
  renderFilmstrip();
}

// Only new frames get new elements: a preview is never asked for again (once a job ends the server keeps only its last).
function renderFilmstrip() {
  const strip = $("#filmstrip");
  strip.hidden = state.frames.length < 2;
  const shown = new Map($$("figure.film", strip).map((figure) => [figure.dataset.frame, figure]));
  const figures = state.frames.map((f) => {
    const figure = shown.get(String(f.frame));
    if (figure) {
      const img = figure.querySelector("img");
      if (img.getAttribute("src") !== f.url) img.src = f.url;
      return figure;
    }
    return el("figure", { class: "film", dataset: { frame: f.frame } },
      el("img", { src: f.url, alt: `frame ${f.frame}` }), el("figcaption", { text: f.frame }));
  });
  if (figures.length !== strip.children.length || figures.some((f, i) => strip.children[i] !== f)) strip.replaceChildren(...figures);
  strip.scrollLeft = strip.scrollWidth;
}

function showResult(job) {
  const result = job.result || { kind: "picture", files: [] };
  const files = result.files || [];
  note("");
  if (result.kind === "report") {
    const page = files.find((f) => /index\.html?$/i.test(f.name || f.url)) || files[0];
    if (page) show("report", page.url);
  } else if (result.kind === "video") {
    const clip = files.find((f) => isVideoName(f.name || f.url)) || files.find((f) => /\.gif$/i.test(f.name || f.url));
    if (clip && isVideoName(clip.name || clip.url)) show("video", clip.url);
    else if (clip) show("image", clip.url);
  } else {
    const picture = files.find((f) => isPictureName(f.name || f.url)) || files[0];
    if (picture) show("image", picture.url);
  }
  if (result.kind !== "video" && result.kind !== "report") state.frames = [];
  renderFilmstrip();
  if (result.kind === "pictures" && files.length > 1) {
    const strip = $("#filmstrip");
    strip.hidden = false;
    strip.replaceChildren(...files.map((f) => el("button", { type: "button", class: "film", title: f.label || f.name,
      onclick: () => show("image", f.url) }, el("img", { src: f.url, alt: f.label || f.name }), el("span", { text: f.label || "" }))));
  }
  const input = inputUrl(job);
  state.compare = input && !input.video && result.kind === "picture" ? input.url : null;
  $("#compare").hidden = !state.compare;
}

function settingsTable(job) {
  const defaults = defaultsOf(job.recipe);
  const rows = Object.entries(job.settings || {}).filter(([name]) => name in defaults);
  const changed = rows.filter(([name, value]) => !(name in defaults) || !same(value, defaults[name]));
  const table = el("dl", { class: "kv" });
  table.append(el("dt", { text: "Job" }), el("dd", { text: job.parent ? `${job.id}, from ${job.parent}` : job.id }));
  for (const [name, value] of (changed.length ? changed : rows.slice(0, 4))) {
    table.append(el("dt", { text: label(name) }), el("dd", { text: shown(value) || "none" }));
  }
  return { table, changed: changed.length, all: rows.length };
}

function renderCaption(job) {
  const box = $("#caption");
  box.hidden = false;
  if (box.dataset.shown === job.id + job.state) return;  // already shown: keep what is open or typed
  box.dataset.jobId = job.id;
  const shown = look(job.recipe);
  const files = (job.result && job.result.files) || [];
  const title = el("div", { class: "caption-title", title: `job ${job.id}${job.parent ? `, made from ${job.parent}` : ""}` },
    el("span", { class: `badge state-${job.state}`, text: job.state }),
    el("strong", { text: shown.tab }),
    el("span", { class: "quiet", text: `${ago(job.created)}${took(job) ? ` · ${took(job)}` : ""}` }));
  const actions = el("div", { class: "caption-actions" });
  if (job.state === "done") {
    for (const f of files) {
      if (job.result.kind === "report" && !/index\.html?$/i.test(f.name || "")) continue;
      const ext = (f.name || f.url).split(".").pop().toUpperCase();
      actions.append(el("a", { class: "button ghost small", href: f.url, download: job.result.kind === "report" ? null : (f.name || ""),
                               target: job.result.kind === "report" ? "_blank" : null, rel: "noopener",
                               dataset: { download: ext } }, job.result.kind === "report" ? "Open the report" : `Download ${ext}`));
    }
  }
  if (!ACTIVE.has(job.state) && state.forms[job.recipe]) {  // a live recording cannot be queued again
    actions.append(el("button", { type: "button", class: "ghost small", dataset: { action: "load" }, title: "put these settings and inputs in the form",
                                  onclick: () => loadSettings(job) }, "Use these settings"));
    actions.append(el("button", { type: "button", class: "ghost small", dataset: { action: "again" }, title: "queue the same settings and inputs again",
                                  onclick: () => again(job.id) }, job.state === "done" ? "Make again" : "Try again"));
  }
  if (job.recipe === "zoom" && job.state === "done") actions.append(continueControl(job));
  actions.append(deleteButton(job.id));
  const { table, changed } = settingsTable(job);
  const details = el("details", { class: "provenance" },
    el("summary", {}, changed ? `Settings (${changed} changed) and provenance` : "Settings and provenance"),
    el("div", { class: "provenance-body" }, table, el("div", { class: "record", dataset: { jobId: job.id } })));
  details.addEventListener("toggle", () => { if (details.open) loadRecord(job, details.querySelector(".record")); });
  box.dataset.shown = job.id + job.state;
  const error = job.state === "failed" ? el("p", { class: "caption-error", text: job.error || "failed" }) : null;
  // What the recipe said besides progress (e.g. "24 frames, 192x144, 24 fps, with sound"), as the CLI prints it.
  const notes = (job.notes || []).length ? el("p", { class: "caption-notes", text: job.notes.join(" · ") }) : null;
  box.replaceChildren(...[el("div", { class: "caption-head" }, title, actions), error, notes, details].filter(Boolean));
}

function continueControl(job) {
  const frames = (job.settings && job.settings.frames) || 0;
  const input = el("input", { type: "text", inputmode: "numeric", value: String(frames || 120), "aria-label": "more frames",
                              class: "mini", name: "continue-frames" });
  const error = el("span", { class: "field-error inline" });
  const button = el("button", { type: "button", class: "ghost small", dataset: { action: "continue" } }, "Continue: +");
  button.addEventListener("click", async () => {
    error.textContent = "";
    const value = input.value.trim();
    const problem = await continueZoom(job.id, NUMBER.test(value) ? Number(value) : value);
    if (problem) error.textContent = problem.message;
  });
  return el("span", { class: "continue", title: `more frames from where the zoom ended (it has ${frames})` }, button, input,
            el("span", { class: "quiet", text: "frames" }), error);
}

function deleteButton(id) {
  const button = el("button", { type: "button", class: "ghost small danger", dataset: { action: "delete" } }, "Delete");
  let armed = false;
  button.addEventListener("click", () => {
    if (!armed) {
      armed = true;
      button.textContent = "Delete: sure?";
      setTimeout(() => { armed = false; button.textContent = "Delete"; }, 3000);
      return;
    }
    removeJob(id);
  });
  return button;
}

async function loadRecord(job, box) {
  if (box.dataset.loaded) return;
  box.dataset.loaded = "1";
  if (job.state !== "done") { box.textContent = "The provenance record comes with a finished result."; return; }
  box.textContent = "Reading the record…";
  try {
    const record = await api("GET", `/api/jobs/${job.id}/record`);
    box.replaceChildren(recordView(record));
  } catch (error) {
    box.textContent = error.message;
  }
}

function recordView(record) {
  const list = el("dl", { class: "kv record-kv" });
  const add = (name, value) => { if (value !== undefined && value !== null && value !== "") list.append(el("dt", { text: name }), el("dd", { text: value })); };
  const model = record.model || {};
  add("Seed", record.seed ?? record.settings?.seed);
  add("Model", [model.name, model.weights_sha256 || model.digest || model.sha256].filter(Boolean).map((v, i) => (i ? `weights ${String(v).slice(0, 12)}…` : v)).join(" · "));
  for (const [role, entry] of Object.entries(record.inputs || {})) {
    const parts = [entry.file || entry.path, Array.isArray(entry.size) ? entry.size.join("×") : null,
                   entry.pixels ? `pixels ${String(entry.pixels).slice(0, 12)}…` : null].filter(Boolean);
    add(label(role), parts.join(" · "));
  }
  add("Device", [record.device, record.threads ? `${record.threads} threads` : null].filter(Boolean).join(" · "));
  add("Versions", [record.dreamscope ? `dreamscope ${record.dreamscope}` : null, record.torch ? `torch ${record.torch}` : null].filter(Boolean).join(" · "));
  const known = new Set(["seed", "model", "inputs", "device", "threads", "dreamscope", "torch", "settings", "format", "recipe"]);
  for (const [key, value] of Object.entries(record)) if (!known.has(key)) add(label(key), typeof value === "object" ? JSON.stringify(value) : String(value));
  return list;
}

// -- queue and gallery ---------------------------------------------------------------------------------------

function thumbFor(job) {
  const files = (job.result && job.result.files) || [];
  // A video result's thumbnail is a frame of its MP4, not the GIF beside it (which can be many megabytes).
  const clip = files.find((f) => isVideoName(f.name || f.url));
  if (clip) return el("video", { src: `${clip.url}#t=0.5`, muted: true, preload: "metadata", playsinline: true });
  const picture = files.find((f) => isPictureName(f.name || f.url));
  if (picture) return el("img", { src: picture.url, alt: "", loading: "lazy" });
  return el("div", { class: "thumb-none", text: job.recipe });
}

function describe(job) {
  const s = job.settings || {};
  const d = defaultsOf(job.recipe);
  const bits = [];
  if (s.layer) bits.push(s.layer); else if (s.layers) bits.push(s.layers);
  if (s.target) bits.push(s.target);
  if (s.classes) bits.push(s.classes.replace(/,/g, " → "));
  if (s.channels && job.recipe !== "probe") bits.push(`ch ${s.channels}`);
  if ("octaves" in s && !same(s.octaves, d.octaves)) bits.push(`${s.octaves} oct`);
  if ("steps" in s && !same(s.steps, d.steps)) bits.push(`${s.steps} steps`);
  if ("frames" in s) bits.push(`${s.frames} frames`);
  if (s.seed) bits.push(`seed ${s.seed}`);
  return bits.join(" · ") || "defaults";
}

function renderLists() {
  const jobs = state.order.map((id) => state.jobs.get(id)).filter(Boolean);
  // queue: everything waiting or running, then the last few that ended without a result
  const active = jobs.filter((j) => ACTIVE.has(j.state)).reverse();
  const ended = jobs.filter((j) => j.state === "failed" || j.state === "cancelled").slice(0, 6);
  const queue = $("#queue-list");
  queue.replaceChildren(...active.concat(ended).map(queueItem));
  $("#queue-empty").hidden = active.length + ended.length > 0;
  const counts = { running: 0, queued: 0, done: 0, failed: 0, cancelled: 0 };
  jobs.forEach((j) => { counts[j.state] = (counts[j.state] || 0) + 1; });
  $("#queue-counts").textContent = [counts.running && `${counts.running} running`, counts.queued && `${counts.queued} waiting`,
                                    counts.failed && `${counts.failed} failed`].filter(Boolean).join(" · ");
  const done = jobs.filter((j) => j.state === "done");
  const gallery = $("#gallery-list");
  const existing = new Map($$(".gallery-item", gallery).map((item) => [item.dataset.jobId, item]));
  gallery.replaceChildren(...done.map((job) => existing.get(job.id) || galleryItem(job)));
  $("#gallery-empty").hidden = done.length > 0;
  $("#gallery-count").textContent = done.length ? String(done.length) : "";
  $$(".gallery-item, .queue-item").forEach((item) => item.classList.toggle("on", item.dataset.jobId === state.focus));
}

function queueItem(job) {
  const shown = look(job.recipe);
  const item = el("li", { class: `queue-item state-${job.state}`, dataset: { jobId: job.id, state: job.state }, tabindex: "0",
                          onclick: (event) => { if (!event.target.closest("button")) focusJob(job.id); } },
    el("div", { class: "queue-line" },
      el("span", { class: `badge state-${job.state}`, text: job.state === "queued" ? "waiting" : job.state }),
      el("span", { class: "queue-name", text: shown.tab }),
      el("span", { class: "queue-desc quiet", text: describe(job) })),
    ACTIVE.has(job.state) ? el("div", { class: "mini-bar" }, el("span", { style: `width:${((job.fraction || 0) * 100).toFixed(1)}%` })) : null,
    job.state === "failed" ? el("p", { class: "queue-error", text: job.error || "failed" }) : null,
    el("div", { class: "queue-actions" },
      ACTIVE.has(job.state) ? el("button", { type: "button", class: "link danger", dataset: { action: "cancel" }, onclick: () => cancelJob(job.id) }, "cancel")
        : el("button", { type: "button", class: "link", dataset: { action: "again" }, onclick: () => again(job.id) }, "try again"),
      !ACTIVE.has(job.state) ? el("button", { type: "button", class: "link", onclick: () => removeJob(job.id) }, "remove") : null));
  item.addEventListener("keydown", (event) => { if (event.key === "Enter") focusJob(job.id); });
  return item;
}

function updateQueueItem(job) {
  const item = $(`.queue-item[data-job-id="${job.id}"] .mini-bar span`);
  if (item) item.style.width = `${((job.fraction || 0) * 100).toFixed(1)}%`;
}

function galleryItem(job) {
  const shown = look(job.recipe);
  const item = el("li", { class: "gallery-item", dataset: { jobId: job.id, state: job.state, recipe: job.recipe } },
    el("button", { type: "button", class: "gallery-open", title: `show ${shown.tab.toLowerCase()} ${job.id}`, onclick: () => focusJob(job.id) },
      el("div", { class: "thumb" }, thumbFor(job)),
      el("div", { class: "gallery-text" },
        el("span", { class: "gallery-name", text: shown.tab }),
        el("span", { class: "gallery-desc quiet", text: describe(job) }))));
  return item;
}

// -- chrome: the header line, messages, compare ---------------------------------------------------------------

function setMeta(problem) {
  const meta = $("#meta");
  if (problem) { meta.textContent = problem; meta.classList.add("bad"); return; }
  meta.classList.remove("bad");
  const info = state.info;
  const model = modelInfo();
  const device = typeof info.device === "string" ? info.device : info.device?.name || "";
  meta.textContent = [model.name, device, info.version ? `v${info.version}` : null].filter(Boolean).join(" · ");
}

let toastTimer = null;
function toast(text) {
  let box = $("#toast");
  if (!box) { box = el("div", { id: "toast", class: "toast", role: "status" }); document.body.append(box); }
  box.textContent = text;
  box.classList.add("on");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => box.classList.remove("on"), 4000);
}

function wireFit() {
  stage.img.addEventListener("load", fit);
  stage.video.addEventListener("loadedmetadata", fit);
  new ResizeObserver(fit).observe($("#canvas"));
}

function wireCompare() {
  const button = $("#compare");
  let saved = null;
  const down = (event) => {
    if (!state.compare) return;
    event.preventDefault();
    saved = stage.img.getAttribute("src");
    stage.img.src = state.compare;
    button.classList.add("on");
  };
  const up = () => {
    if (saved === null) return;
    stage.img.src = saved;
    saved = null;
    button.classList.remove("on");
  };
  button.addEventListener("pointerdown", down);
  button.addEventListener("pointerup", up);
  button.addEventListener("pointerleave", up);
  button.addEventListener("keydown", (event) => { if (event.key === " " || event.key === "Enter") down(event); });
  button.addEventListener("keyup", up);
}

// -- start ---------------------------------------------------------------------------------------------------

async function start() {
  try {
    state.info = await api("GET", "/api/info");
  } catch (error) {
    $("#meta").textContent = `cannot start: ${error.message}`;
    $("#meta").classList.add("bad");
    return;
  }
  buildForms();
  buildLive();
  setMeta();
  wideDrop();
  wireCompare();
  wireFit();
  $("#ladder-close").addEventListener("click", () => { state.ladder = null; renderLadder(); });
  selectRecipe(state.forms.dream ? "dream" : Object.keys(state.forms)[0]);
  document.body.classList.add("ready");
  await refreshJobs();
}

window.addEventListener("beforeunload", () => stopWatching());
start();
