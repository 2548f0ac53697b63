// The seqlab page: POST /v1/explain, then colour each word of the review by its score.
"use strict";

const $ = (id) => document.getElementById(id);
const COLOURS = { positive: "var(--positive)", negative: "var(--negative)" };
let models = [];

function colourOf(label) { return COLOURS[label] || "var(--other)"; }

async function loadModels() {
  const response = await fetch("/v1/models");
  models = await response.json();
  for (const model of models) {
    const option = document.createElement("option");
    option.value = model.name;
    option.textContent = `${model.name} (${model.architecture}, ${model.backend})`;
    $("model").append(option);
  }
  updateMethods();
}

function updateMethods() {
  const model = models.find((m) => m.name === $("model").value);
  for (const option of $("method").options) {
    option.disabled = option.value !== "auto" && !(model && model.methods.includes(option.value));
  }
  if ($("method").selectedOptions[0].disabled) $("method").value = "auto";
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
}

function renderBars(prediction) {
  const bars = $("bars");
  bars.replaceChildren();
  for (const [label, p] of Object.entries(prediction.probabilities)) {
    const name = document.createElement("span");
    name.textContent = label;
    const bar = document.createElement("div");
    bar.className = "bar";
    const fill = document.createElement("div");
    fill.style.width = `${(100 * p).toFixed(1)}%`;
    fill.style.background = `rgb(${colourOf(label)})`;
    bar.append(fill);
    const value = document.createElement("span");
    value.textContent = `${(100 * p).toFixed(1)}%`;
    bars.append(name, bar, value);
  }
}

// A word's colour: the target's colour when it pushed toward the target, the other class's
// (for two classes) when it pushed away; opacity grows with |score|. Attention has no sign.
function wordStyle(score, scale, result, labels) {
  if (score === null || scale === 0) return "";
  let label = result.target;
  if (score < 0) label = labels.length === 2 ? labels.find((l) => l !== result.target) : "other";
  const alpha = Math.min(1, Math.abs(score) / scale) * 0.75;
  return `background: rgba(${colourOf(label)}, ${alpha.toFixed(3)})`;
}

function renderWords(text, result, labels) {
  const container = $("highlighted");
  container.replaceChildren();
  const scores = result.words.filter((w) => w.read).map((w) => Math.abs(w.score));
  const scale = scores.length ? Math.max(...scores) : 0;
  let at = 0;
  for (const word of result.words) {
    if (word.start > at) container.append(document.createTextNode(text.slice(at, word.start)));
    const span = document.createElement("span");
    span.className = word.read ? "word" : "word cut";
    span.textContent = word.text;
    span.dataset.score = word.read ? String(word.score) : "";
    span.dataset.token = word.token;
    span.title = word.read
      ? `${word.token}: ${word.score >= 0 ? "+" : ""}${word.score.toPrecision(3)}`
      : "not read: cut off to fit the model's maxlen";
    if (word.read) span.setAttribute("style", wordStyle(word.score, scale, result, labels));
    container.append(span);
    at = word.end;
  }
  if (at < text.length) container.append(document.createTextNode(text.slice(at)));
}

function renderLegend(result, labels) {
  const legend = $("legend");
  legend.replaceChildren();
  const entries = result.method === "attention"
    ? [[result.target, "more attention"]]
    : labels.map((label) => [label, `pushed toward ${label}`]);
  for (const [label, text] of entries) {
    const item = document.createElement("span");
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = `rgba(${colourOf(label)}, 0.6)`;
    item.append(swatch, text);
    legend.append(item);
  }
  const cut = document.createElement("span");
  cut.innerHTML = '<span class="word cut">struck out</span>: not read';
  legend.append(cut);
}

async function predict(event) {
  event.preventDefault();
  const text = $("review").value;
  $("error").hidden = true;
  $("predict").disabled = true;
  try {
    const response = await fetch("/v1/explain", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ text, model: $("model").value, method: $("method").value }),
    });
    const result = await response.json();
    if (!response.ok) {
      showError(result.error || `the server answered ${response.status}`);
      return;
    }
    const prediction = result.prediction;
    const labels = Object.keys(prediction.probabilities);
    $("label").textContent = prediction.label;
    $("label").className = `label ${prediction.label}`;
    $("probability").textContent = `${(100 * prediction.probability).toFixed(1)}%`;
    $("result").dataset.probability = String(prediction.probability);
    $("result").dataset.label = prediction.label;
    $("meta").textContent = `${prediction.tokens} tokens read by ${result.model} (${result.backend})`;
    renderBars(prediction);
    $("method-note").textContent = `Each word is coloured by its ${result.description}.`;
    $("method-note").dataset.method = result.method;
    $("cut-note").hidden = result.words_cut === 0;
    $("cut-note").textContent = `The review is longer than the model reads: its first ${result.words_cut} ` +
      "word(s) were cut off, as in training, and are shown struck out.";
    renderWords(text, result, labels);
    renderLegend(result, labels);
    $("result").hidden = false;
  } catch (error) {
    showError(`could not reach the server: ${error}`);
  } finally {
    $("predict").disabled = false;
  }
}

$("form").addEventListener("submit", predict);
$("model").addEventListener("change", updateMethods);
loadModels().catch((error) => showError(`could not load the models: ${error}`));
