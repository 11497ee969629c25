// Runs amgan_tf's TF.js export in Node with the wasm backend (the browser's runtime), so tests can
// compare it with the SavedModel. Usage:
//   node node_check.mjs MODEL_DIR REQUEST.json RESULT.json [REPEATS] [--profile]
// --profile also prints the kernel time per op type to stderr (where the time goes).
// REQUEST.json: {"image": {"shape": [1,H,W,3], "data": [...uint8]}, "ms": [[...], ...],
//                "region_threshold": 0.5, "region_inside": 1}
// RESULT.json: {"image": {shape, data}, "attention": {shape, data}, "backend", "ms_per_run"}.
import fs from 'node:fs';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import * as tf from '@tensorflow/tfjs';
import {setWasmPaths} from '@tensorflow/tfjs-backend-wasm';

const here = path.dirname(fileURLToPath(import.meta.url));

function fileHandler(dir) {  // pure tfjs has no file:// loader in Node (that is tfjs-node's)
  return {
    load: async () => {
      const model = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
      const specs = [], buffers = [];
      for (const group of model.weightsManifest) {
        specs.push(...group.weights);
        for (const p of group.paths) buffers.push(fs.readFileSync(path.join(dir, p)));
      }
      const all = Buffer.concat(buffers);
      return {
        modelTopology: model.modelTopology, format: model.format,
        generatedBy: model.generatedBy, convertedBy: model.convertedBy,
        signature: model.signature, userDefinedMetadata: model.userDefinedMetadata,
        weightSpecs: specs,
        weightData: all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength),
      };
    },
  };
}

const args = process.argv.slice(2).filter((a) => a !== '--profile');
const profile = process.argv.includes('--profile');
const [modelDir, requestPath, resultPath, repeatsArg] = args;
if (!modelDir || !requestPath || !resultPath) {
  console.error('usage: node node_check.mjs MODEL_DIR REQUEST.json RESULT.json [REPEATS]');
  process.exit(2);
}
setWasmPaths(path.join(here, 'node_modules/@tensorflow/tfjs-backend-wasm/dist') + path.sep);
await tf.setBackend('wasm');
await tf.ready();
const model = await tf.loadGraphModel(fileHandler(modelDir));
const req = JSON.parse(fs.readFileSync(requestPath, 'utf8'));
// Feed by the graph's own input names (the converter names scalar inputs "name:0").
const byBase = Object.fromEntries(model.inputs.map((i) => [i.name.replace(/:0$/, ''), i.name]));
const inputs = () => ({
  [byBase.image]: tf.tensor(req.image.data, req.image.shape, 'int32'),
  [byBase.ms]: tf.tensor2d(req.ms, undefined, 'float32'),
  [byBase.region_threshold]: tf.scalar(req.region_threshold ?? 0.5, 'float32'),
  [byBase.region_inside]: tf.scalar(req.region_inside ?? 1, 'float32'),
});
const run = async () => {
  const feed = inputs();
  const out = model.execute(feed);
  tf.dispose(Object.values(feed));
  return out;
};
await run().then((o) => tf.dispose(o));  // warm-up (wasm kernels, shape inference)
const repeats = Number(repeatsArg || 1);
let out, times = [];
for (let i = 0; i < repeats; i++) {
  if (out) tf.dispose(out);
  const t0 = performance.now();
  out = await run();
  await out[0].data();
  times.push(performance.now() - t0);
}
times.sort((a, b) => a - b);
if (profile) {
  const info = await tf.profile(async () => tf.dispose(await run()));
  const byOp = {};
  for (const k of info.kernels) byOp[k.name] = (byOp[k.name] || 0) + (await k.kernelTimeMs);
  const rows = Object.entries(byOp).sort((a, b) => b[1] - a[1]);
  const total = rows.reduce((s, r) => s + r[1], 0);
  console.error(`kernel time ${total.toFixed(1)} ms:`);
  for (const [op, ms] of rows.slice(0, 12)) console.error(`  ${op.padEnd(24)} ${ms.toFixed(1)}`);
}
const outputs = model.outputs.map((o) => o.name);
const byName = {};
for (let i = 0; i < outputs.length; i++) byName[outputs[i]] = out[i];
const result = {backend: tf.getBackend(), ms_per_run: times[Math.floor(times.length / 2)],
                outputs};
for (const t of out) {
  const key = t.shape[t.shape.length - 1] === 3 ? 'image' : 'attention';
  result[key] = {shape: t.shape, dtype: t.dtype, data: Array.from(await t.data())};
}
fs.writeFileSync(resultPath, JSON.stringify(result));
console.log(`${result.backend}: ${result.ms_per_run.toFixed(1)} ms per run (median of ${repeats})`);
