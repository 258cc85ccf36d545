// {{name}}: an airssys component in JavaScript. It greets whoever writes to it and
// counts the greetings.
//
// The component exports the airssys world's `handler-only` interfaces (wit/airssys.wit):
//   handler.handleMessage(sender, payload): payload is a Uint8Array that starts with a
//     multicodec prefix (JSON: 0x80 0x04); return a Uint8Array to answer, undefined
//     for no answer, or throw a string to fail this message only;
//   bulk.handleMessage(sender, lane): the same message carried as one string
//     ("a" + the bytes when they are ASCII, else "x" + their hex digits), which the
//     host copies in one go; the reply travels the same way.

const JSON_PREFIX = Uint8Array.of(0x80, 0x04); // multicodec 0x0200 (json) as a varint
const encoder = new TextEncoder();
const decoder = new TextDecoder();

// Module state lives as long as the instance; a restart starts it over.
let greeted = 0;

/** The reply to one decoded message: {"name": "..."} or a plain string. */
export function greet(value) {
  const isObject = value !== null && typeof value === "object" && !Array.isArray(value);
  const name = isObject ? (value.name ?? "world") : value;
  if (typeof name !== "string" || name === "") {
    throw 'send {"name": "..."} or a plain string';
  }
  greeted += 1;
  return { greeting: `Hello, ${name}!`, count: greeted };
}

function handle(payload) {
  if (payload.length < 2 || payload[0] !== JSON_PREFIX[0] || payload[1] !== JSON_PREFIX[1]) {
    throw "this component speaks JSON only (airssys run --codec json)";
  }
  let value;
  try {
    value = JSON.parse(decoder.decode(payload.subarray(2)));
  } catch {
    throw "the payload is not valid JSON";
  }
  const body = encoder.encode(JSON.stringify(greet(value)));
  const reply = new Uint8Array(JSON_PREFIX.length + body.length);
  reply.set(JSON_PREFIX);
  reply.set(body, JSON_PREFIX.length);
  return reply;
}

// A thrown string becomes err(string): the message fails, the component keeps running.
function failing(error) {
  return typeof error === "string" ? error : String(error?.message ?? error);
}

function fromLane(lane) {
  if (lane.startsWith("a")) {
    return encoder.encode(lane.slice(1));
  }
  const hex = lane.slice(1);
  if (!lane.startsWith("x") || hex.length % 2 !== 0 || !/^[0-9a-f]*$/i.test(hex)) {
    throw "the bulk lane carries 'a' + ASCII or 'x' + hex digits";
  }
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) {
    bytes[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  }
  return bytes;
}

function toLane(bytes) {
  if (bytes.every((b) => b < 0x80)) {
    return "a" + decoder.decode(bytes);
  }
  return "x" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export const handler = {
  handleMessage(_sender, payload) {
    try {
      return handle(payload);
    } catch (error) {
      throw failing(error);
    }
  },
};

export const bulk = {
  handleMessage(_sender, lane) {
    try {
      return toLane(handle(fromLane(lane)));
    } catch (error) {
      throw failing(error);
    }
  },
};
