// Runs an ONNX file exported by `vtl export` in ONNX Runtime (onnxruntime-node) on a raw
// float32 input and writes the `logits` output as raw float32.
//   node run_model.js MODEL.onnx INPUT.bin OUTPUT.bin N SIDE
const ort = require('onnxruntime-node');
const fs = require('fs');

(async () => {
  const [model, inputFile, outputFile, n, side] = process.argv.slice(2);
  const session = await ort.InferenceSession.create(model);
  const bytes = fs.readFileSync(inputFile);
  const data = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
  const images = new ort.Tensor('float32', data, [+n, 3, +side, +side]);
  const outputs = await session.run({images});
  const logits = outputs.logits.data;
  fs.writeFileSync(outputFile, Buffer.from(logits.buffer, logits.byteOffset, logits.byteLength));
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
