/** The float16 wire format of distributions: our decode table against the library's reading of every bit pattern. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { getFloat16, setFloat16 } from "@petamoriken/float16";
import { decodeProbs, encodeProbs, float16Values, float32BitsToHalf } from "../../src/models/remote/protocol.js";
import { Rng } from "../../src/core/random.js";

test("the decode table gives every float16 bit pattern the value the float16 library reads", () => {
  const table = float16Values();
  const view = new DataView(new ArrayBuffer(2));
  for (let bits = 0; bits < 65536; bits++) {
    view.setUint16(0, bits, true);
    const want = getFloat16(view, 0, true);
    assert.ok(Object.is(table[bits], want) || (Number.isNaN(want) && Number.isNaN(table[bits])), `bits ${bits}: ${table[bits]} vs ${want}`);
  }
});

test("encoding rounds float32 values to the float16 the library rounds them to (nearest even)", () => {
  const f32 = new Float32Array(1);
  const u32 = new Uint32Array(f32.buffer);
  const view = new DataView(new ArrayBuffer(2));
  const rng = new Rng(7);
  const check = (bits: number): void => {
    u32[0] = bits >>> 0;
    setFloat16(view, 0, f32[0], true);
    const want = view.getUint16(0, true);
    const got = float32BitsToHalf(u32[0]);
    // NaN payloads may differ; both must be NaN.
    if (Number.isNaN(f32[0])) assert.equal(got & 0x7c00, 0x7c00);
    else assert.equal(got, want, `float32 bits 0x${u32[0].toString(16)} (${f32[0]})`);
  };
  // Every float16 value, the halfway points around each and their neighbours, then random bits.
  for (let h = 0; h < 0x7c00; h++) {
    const v = float16Values()[h];
    f32[0] = v;
    for (const d of [-0x1001, -0x1000, -0xfff, -1, 0, 1, 0xfff, 0x1000, 0x1001]) check(u32[0] + d);
  }
  for (let i = 0; i < 200_000; i++) check(Math.floor(rng.next() * 2 ** 32));
  for (const bits of [0, 0x80000000, 0x7f800000, 0xff800000, 0x477fe000, 0x477ff000, 0x33000000, 0x33000001, 0x38800000, 0x387fffff]) check(bits);
});

test("encode then decode: each probability rounded to float16, each distribution renormalised", () => {
  const vocab = 1000;
  const outputs = [0, 1, 2].map((s) => {
    const w = Float64Array.from({ length: vocab }, (_, k) => Math.exp(-((k * (s + 1)) % 37) / 3));
    const sum = w.reduce((a, b) => a + b, 0);
    return { probs: w.map((x) => x / sum) };
  });
  const raw = encodeProbs(outputs, vocab, "FLOAT16");
  assert.equal(raw.byteLength, 3 * vocab * 2);
  const back = decodeProbs(raw, 3, vocab, "float16")!;
  back.forEach((probs, i) => {
    assert.ok(Math.abs(probs.reduce((a, b) => a + b, 0) - 1) < 1e-12);
    probs.forEach((p, k) => assert.ok(Math.abs(p - outputs[i].probs[k]) <= 2 ** -11 * outputs[i].probs[k] * 1.01 + 2 ** -24));
  });
  assert.equal(decodeProbs(raw, 2, vocab, "float16"), undefined, "a size that does not fit is refused");
  // float32 round trip is exact to float32.
  const f32 = decodeProbs(encodeProbs(outputs, vocab, "FLOAT32"), 3, vocab, "float32")!;
  f32.forEach((probs, i) => probs.forEach((p, k) => assert.equal(p, Math.fround(outputs[i].probs[k]))));
});
