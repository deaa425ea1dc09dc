// Reference run of a TF.js graph model with @tensorflow/tfjs (pure JS CPU backend) in node, for the parity test
// tests/test_identity_tfjs.py.
//
//   node tests/tfjs_reference/embed.mjs MODEL.json INPUT.f32 N,H,W,C OUTPUT.f32 NODE [NODE ...]
//
// INPUT.f32: little-endian float32 NHWC tensor that is fed to the graph's (single) input as is. Writes the named
// nodes' outputs, flattened and concatenated in the order given, as little-endian float32 to OUTPUT.f32, and prints
// their shapes as JSON. @tensorflow/tfjs is resolved from $TFJS_DIR (default: <repo>/.cache/tfjs, installed by
// `make install` with `npm install --prefix .cache/tfjs @tensorflow/tfjs@4.22.0`).
import { createRequire } from 'node:module';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const tfjsDir = resolve(process.env.TFJS_DIR || join(here, '..', '..', '.cache', 'tfjs'));
const require = createRequire(join(tfjsDir, 'package.json'));
const tf = require('@tensorflow/tfjs');

const [modelPath, inputPath, shapeArg, outputPath, ...nodes] = process.argv.slice(2);
if (!nodes.length) {
  console.error('usage: embed.mjs MODEL.json INPUT.f32 N,H,W,C OUTPUT.f32 NODE [NODE ...]');
  process.exit(2);
}

function toArrayBuffer(buf) {
  return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
}

async function main() {
  await tf.setBackend('cpu');
  const model = JSON.parse(readFileSync(modelPath, 'utf8'));
  const specs = [];
  const chunks = [];
  for (const group of model.weightsManifest) {
    specs.push(...group.weights);
    for (const p of group.paths) chunks.push(readFileSync(join(dirname(modelPath), p)));
  }
  const handler = tf.io.fromMemory({
    modelTopology: model.modelTopology,
    weightSpecs: specs,
    weightData: toArrayBuffer(Buffer.concat(chunks)),
    format: model.format,
    generatedBy: model.generatedBy,
    convertedBy: model.convertedBy,
    signature: model.signature,
    userDefinedMetadata: model.userDefinedMetadata,
  });
  const graph = await tf.loadGraphModel(handler);
  const shape = shapeArg.split(',').map(Number);
  const data = new Float32Array(toArrayBuffer(readFileSync(inputPath)));
  const input = tf.tensor(data, shape, 'float32');
  const outs = graph.execute(input, nodes);
  const list = Array.isArray(outs) ? outs : [outs];
  const parts = [];
  const shapes = [];
  for (const t of list) {
    parts.push(Buffer.from((await t.data()).buffer));
    shapes.push(t.shape);
  }
  writeFileSync(outputPath, Buffer.concat(parts));
  console.log(JSON.stringify({ backend: tf.getBackend(), version: tf.version.tfjs, shapes }));
}

main().catch((err) => {
  console.error(String(err && err.stack ? err.stack : err));
  process.exit(1);
});
