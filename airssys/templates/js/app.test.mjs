// The handler in plain Node, no build: npm test (node --test).
import assert from "node:assert/strict";
import { test } from "node:test";

import { bulk, handler } from "./app.js";

const JSON_PREFIX = [0x80, 0x04];

function encode(value) {
  return Uint8Array.from([...JSON_PREFIX, ...new TextEncoder().encode(JSON.stringify(value))]);
}

function decode(payload) {
  assert.deepEqual([...payload.subarray(0, 2)], JSON_PREFIX);
  return JSON.parse(new TextDecoder().decode(payload.subarray(2)));
}

function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

test("greets and counts", () => {
  const first = decode(handler.handleMessage("/test", encode({ name: "Ada" })));
  assert.equal(first.greeting, "Hello, Ada!");
  const second = decode(handler.handleMessage("/test", encode("Grace")));
  assert.deepEqual(second, { greeting: "Hello, Grace!", count: first.count + 1 });
});

test("the bulk lane carries the same messages", () => {
  const reply = bulk.handleMessage("/test", "x" + hex(encode({ name: "Ada" })));
  assert.match(reply, /^x[0-9a-f]+$/);
  const bytes = Uint8Array.from(reply.slice(1).match(/../g), (pair) => parseInt(pair, 16));
  assert.equal(decode(bytes).greeting, "Hello, Ada!");
});

test("a bad message fails with a string (err), not a trap", () => {
  assert.throws(() => handler.handleMessage("/test", encode({ name: 42 })), /name/);
  assert.throws(() => handler.handleMessage("/test", Uint8Array.of(0x55, 0x68, 0x69)), /JSON/);
});
