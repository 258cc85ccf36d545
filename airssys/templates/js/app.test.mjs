// The handler in plain Node, no build: npm test (node --test).
import assert from "node:assert/strict";
import { test } from "node:test";

import { bulkText, handler } from "./app.js";

const JSON_PREFIX = [0x80, 0x04];

function encode(value) {
  return Uint8Array.from([...JSON_PREFIX, ...new TextEncoder().encode(JSON.stringify(value))]);
}

function decode(payload) {
  assert.deepEqual([...payload.subarray(0, 2)], JSON_PREFIX);
  return JSON.parse(new TextDecoder().decode(payload.subarray(2)));
}

test("greets and counts", () => {
  const first = decode(handler.handleMessage("/test", encode({ name: "Ada" })));
  assert.equal(first.greeting, "Hello, Ada!");
  const second = decode(handler.handleMessage("/test", encode("Grace")));
  assert.deepEqual(second, { greeting: "Hello, Grace!", count: first.count + 1 });
});

test("the bulk lane carries JSON as text", () => {
  const reply = bulkText.handleMessage("/test", 'u8004:{"name": "Ada"}');
  assert.equal(reply.tag, "bytes");
  assert.equal(decode(reply.val).greeting, "Hello, Ada!");
});

test("the bulk lane refuses what is not JSON with a string", () => {
  assert.throws(() => bulkText.handleMessage("/test", "aUhi"), /JSON only/);
  assert.throws(() => bulkText.handleMessage("/test", "x8004ff"), /JSON only/);
  assert.throws(() => bulkText.handleMessage("/test", "u8004:{nope"), /not valid JSON/);
  assert.throws(() => bulkText.handleMessage("/test", "q"), /bulk lane/);
});

test("a bad message fails with a string (err), not a trap", () => {
  assert.throws(() => handler.handleMessage("/test", encode({ name: 42 })), /name/);
  assert.throws(() => handler.handleMessage("/test", Uint8Array.of(0x55, 0x68, 0x69)), /JSON/);
});
