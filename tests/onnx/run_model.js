// Runs an ONNX model with onnxruntime-node on one float32 input and writes or compares its output.
//   node run_model.js MODEL INPUT.bin DIMS [--out OUT.bin] [--expect EXPECTED.bin --rtol 1e-5]
// DIMS: the input's dimensions, comma-separated ("5,1,28,28"). Files are raw float32, little-endian.
// With --expect it prints `onnxruntime: MODEL: max_rel_err=E (max_abs_err=A, scale=S, n=N)`, where
// max_rel_err = max |onnxruntime - expected| / max(max |expected|, 1e-6) (the error relative to the output's
// scale), and exits 1 when it exceeds --rtol or the value counts differ.
// The onnxruntime-node package is found through NODE_PATH (see cmake/setup_onnxruntime.sh).
'use strict';
const fs = require('fs');

async function main() {
  const args = process.argv.slice(2);
  if (args.length < 3) {
    console.error('usage: node run_model.js MODEL INPUT.bin DIMS [--out OUT.bin] [--expect EXPECTED.bin --rtol R]');
    process.exit(2);
  }
  const [model, inputPath, dimsText] = args;
  const opt = {};
  for (let i = 3; i < args.length; i += 2) opt[args[i].replace(/^--/, '')] = args[i + 1];
  const ort = require('onnxruntime-node');
  const dims = dimsText.split(',').map(Number);
  const buf = fs.readFileSync(inputPath);
  const data = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
  const expectCount = dims.reduce((a, b) => a * b, 1);
  if (data.length !== expectCount) throw new Error(`${inputPath} holds ${data.length} floats, dims say ${expectCount}`);
  const session = await ort.InferenceSession.create(model, { graphOptimizationLevel: 'disabled' });
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data, dims) };
  const results = await session.run(feeds);
  const out = results[session.outputNames[0]];
  const y = out.data;
  if (opt.out) fs.writeFileSync(opt.out, Buffer.from(y.buffer, y.byteOffset, y.byteLength));
  if (opt.expect) {
    const eb = fs.readFileSync(opt.expect);
    const ref = new Float32Array(eb.buffer.slice(eb.byteOffset, eb.byteOffset + eb.length));
    if (ref.length !== y.length) {
      console.log(`onnxruntime: ${model}: FAILED: output has ${y.length} values [${out.dims}], expected ${ref.length}`);
      process.exit(1);
    }
    let maxAbs = 0, scale = 0;
    for (let i = 0; i < y.length; ++i) {
      maxAbs = Math.max(maxAbs, Math.abs(y[i] - ref[i]));
      scale = Math.max(scale, Math.abs(ref[i]));
      if (Number.isNaN(y[i]) !== Number.isNaN(ref[i])) maxAbs = Infinity;
    }
    const rel = maxAbs / Math.max(scale, 1e-6);
    const rtol = Number(opt.rtol ?? '1e-5');
    const ok = rel <= rtol;
    console.log(`onnxruntime: ${model}: ${ok ? 'ok' : 'FAILED'} max_rel_err=${rel.toExponential(3)} ` +
                `(max_abs_err=${maxAbs.toExponential(3)}, scale=${scale.toPrecision(4)}, n=${y.length}, ` +
                `output [${out.dims}], onnxruntime ${ort.env.versions.common})`);
    if (!ok) process.exit(1);
  } else {
    console.log(`onnxruntime: ${model}: output [${out.dims}]`);
  }
}

main().catch((e) => { console.error(`run_model: ${e.stack || e}`); process.exit(1); });
