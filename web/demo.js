// amgan_tf browser demo: loads model/model.json (a TF.js export, `python -m export
// --format=tfjs`) and model/manipulations.json (its schema and edit vectors), and runs edits locally
// with the wasm backend. The graph does all pre- and post-processing (pad, resize, full-resolution
// composite), so any image size works as in the CLI. window.amganDemo exposes the state for tests.
'use strict';

const MAX_SIDE = 2048;  // larger images are scaled down first (browser memory), with a notice
const $ = (id) => document.getElementById(id);
const state = {model: null, manifest: null, imageName: '', last: null};

function setStatus(text, kind = 'ok') {
  $('status').textContent = text;
  $('status').dataset.state = kind;
}

function fillSelect(select, options) {
  select.innerHTML = '';
  for (const o of options) select.add(new Option(o, o));
}

function manipulable() {
  return state.manifest.attributes.filter((a) => a.manipulated);
}

function buildMenus() {
  const attrs = manipulable().map((a) => a.name);
  fillSelect($('attribute'), attrs);
  for (const a of attrs) $('region-attribute').add(new Option(a, a));
  const values = (name) => manipulable().find((a) => a.name === name).values;
  const syncValues = () => fillSelect($('value'), values($('attribute').value));
  const syncRegion = () => {
    const name = $('region-attribute').value;
    for (const id of ['region-value', 'region-mode', 'region-threshold']) $(id).disabled = !name;
    fillSelect($('region-value'), name ? values(name) : []);
  };
  $('attribute').onchange = syncValues;
  $('region-attribute').onchange = syncRegion;
  $('region-threshold').value = state.manifest.default_region_threshold;
  syncValues();
  syncRegion();
}

function drawImage(source, name) {
  let w = source.naturalWidth || source.width, h = source.naturalHeight || source.height;
  const scale = Math.min(1, MAX_SIDE / Math.max(w, h));
  w = Math.round(w * scale); h = Math.round(h * scale);
  const canvas = $('input');
  canvas.width = w; canvas.height = h;
  canvas.getContext('2d').drawImage(source, 0, 0, w, h);
  state.imageName = name;
  const note = scale < 1 ? ` (scaled to ${w}x${h}: at most ${MAX_SIDE} px per side)` : '';
  setStatus(`Image ${name}, ${w}x${h}${note}. Choose an edit and press Manipulate.`);
  $('run').disabled = !state.model;
}

function loadFile(file) {
  if (!file.type.startsWith('image/')) {
    setStatus(`${file.name} is not an image (type "${file.type || 'unknown'}"); choose a JPEG or ` +
              'PNG.', 'error');
    return;
  }
  const img = new Image();
  img.onload = () => { drawImage(img, file.name); URL.revokeObjectURL(img.src); };
  img.onerror = () => setStatus(`Could not decode ${file.name}: the file is damaged or not an ` +
                                'image the browser can read.', 'error');
  img.src = URL.createObjectURL(file);
}

function requestVectors() {
  const m = state.manifest.m;
  const rows = [m[$('attribute').value][$('value').value]];
  const regionName = $('region-attribute').value;
  if (regionName) rows.push(m[regionName][$('region-value').value]);
  return rows;
}

async function manipulate() {
  if (!state.model || !$('input').width) return null;
  const threshold = Number($('region-threshold').value);
  if (!(threshold >= 0 && threshold < 1)) {
    setStatus('The region threshold must be in [0, 1).', 'error');
    return null;
  }
  setStatus('Running...', 'running');
  $('run').disabled = true;
  try {
    const t0 = performance.now();
    const byBase = Object.fromEntries(
        state.model.inputs.map((i) => [i.name.replace(/:0$/, ''), i.name]));
    const ms = requestVectors();
    const outputs = tf.tidy(() => state.model.execute({
      [byBase.image]: tf.browser.fromPixels($('input')).expandDims(0),
      [byBase.ms]: tf.tensor2d(ms, undefined, 'float32'),
      [byBase.region_threshold]: tf.scalar(threshold, 'float32'),
      [byBase.region_inside]: tf.scalar($('region-mode').value === 'inside' ? 1 : 0, 'float32'),
    }));
    const image = outputs.find((t) => t.shape[3] === 3);
    const attention = outputs.find((t) => t.shape[3] === 1);
    const [h, w] = image.shape.slice(1, 3);
    const imageData = await image.data();
    const attentionData = await attention.data();
    const ms_taken = performance.now() - t0;
    await draw(image, attention);
    tf.dispose(outputs);
    state.last = {height: h, width: w, image: imageData, attention: attentionData, ms: ms_taken,
                  vectors: ms};
    const edit = `${$('attribute').value} -> ${$('value').value}` + (ms.length > 1 ?
        ` ${$('region-mode').value} the mask of ${$('region-attribute').value} -> ` +
        `${$('region-value').value} (threshold ${threshold})` : '');
    setStatus(`${edit}: ${w}x${h} in ${ms_taken.toFixed(0)} ms (${tf.getBackend()}).`, 'done');
    return state.last;
  } catch (e) {
    setStatus(`The model failed: ${e.message}`, 'error');
    throw e;
  } finally {
    $('run').disabled = false;
  }
}

async function draw(image, attention) {
  const result = $('result'), overlay = $('overlay');
  await tf.browser.toPixels(image.squeeze([0]), result);
  const red = tf.tidy(() => {
    const x = tf.browser.fromPixels($('input')).toFloat();
    const a = attention.squeeze([0]).mul(0.7);
    return x.mul(tf.scalar(1).sub(a)).add(tf.tensor1d([255, 0, 0]).mul(a)).round()
        .clipByValue(0, 255).toInt();
  });
  await tf.browser.toPixels(red, overlay);
  red.dispose();
}

// A model folder may bring its own examples (model/examples.json: a list of files in
// model/examples/), e.g. real photos for a real-photo model; otherwise the page's own are shown.
async function useModelExamples() {
  const response = await fetch('model/examples.json');
  if (!response.ok) return;
  const files = await response.json();
  const box = $('examples');
  box.innerHTML = '';
  files.forEach((file, i) => {
    const img = document.createElement('img');
    img.src = `model/examples/${file}`;
    img.alt = `example ${i + 1}`;
    img.dataset.example = String(i);
    img.onclick = () => drawImage(img, file);
    box.appendChild(img);
  });
}

async function init() {
  tf.wasm.setWasmPaths('node_modules/@tensorflow/tfjs-backend-wasm/dist/');
  await tf.setBackend('wasm');
  const response = await fetch('model/manipulations.json');
  if (!response.ok) throw new Error('model/manipulations.json is missing: start the page with ' +
                                    '`python -m serving.demo --model=DIR` (a TF.js export).');
  state.manifest = await response.json();
  state.model = await tf.loadGraphModel('model/model.json');
  const mf = state.manifest;
  $('model-info').textContent = `Model: ${mf.training_image_size} px generator, step ${mf.step}, ` +
      `${mf.quantize === 'float16' ? 'float16' : 'float32'} weights; runs on this device ` +
      `(${tf.getBackend()}).`;
  buildMenus();
  await useModelExamples();
  setStatus('Ready: pick an example or your own image.', 'ready');
  $('run').disabled = !$('input').width;
}

$('run').onclick = () => manipulate();
$('file').onchange = (e) => e.target.files[0] && loadFile(e.target.files[0]);
const drop = $('drop');
drop.ondragover = (e) => { e.preventDefault(); drop.classList.add('over'); };
drop.ondragleave = () => drop.classList.remove('over');
drop.ondrop = (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  if (e.dataTransfer.files[0]) loadFile(e.dataTransfer.files[0]);
};
for (const img of document.querySelectorAll('#examples img')) {
  img.onclick = () => drawImage(img, img.getAttribute('src').split('/').pop());
}

window.amganDemo = {
  state,
  ready: init().catch((e) => { setStatus(`Could not start: ${e.message}`, 'error'); throw e; }),
  manipulate,
  useImage: drawImage,  // (an image or canvas, a name)
  useExample: (i) => {
    const img = document.querySelectorAll('#examples img')[i];
    return (img.complete ? Promise.resolve() : new Promise((r) => { img.onload = r; }))
        .then(() => drawImage(img, img.getAttribute('src').split('/').pop()));
  },
  choose: (attribute, value, region = null) => {
    $('attribute').value = attribute; $('attribute').onchange();
    $('value').value = value;
    $('region-attribute').value = region ? region.attribute : ''; $('region-attribute').onchange();
    if (region) {
      $('region-value').value = region.value;
      $('region-mode').value = region.mode || 'inside';
      $('region-threshold').value = region.threshold ?? state.manifest.default_region_threshold;
    }
  },
};
