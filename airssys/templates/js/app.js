// {{name}}: an airssys component in JavaScript. It greets whoever writes to it and
// counts the greetings.
//
// The component exports the interfaces of the airssys world `handler-text`
// (wit/airssys.wit):
//   handler.handleMessage(sender, payload): payload is a Uint8Array that starts with a
//     multicodec prefix (JSON: 0x80 0x04); return a Uint8Array to answer, undefined
//     for no answer, or throw a string to fail this message only;
//   bulkText.handleMessage(sender, lane): the same message carried as one string,
//     which the host copies in one go and this code never converts byte by byte:
//       "u" + the prefix in hex + ":" + the text (a JSON message: "u8004:{...}"),
//       "a" + the bytes when they are all ASCII, "x" + their hex digits otherwise.
//     The reply is { tag: "bytes", val: Uint8Array } (ComponentizeJS measures a
//     returned string character by character in interpreted JS, ~2,500 fuel each,
//     but copies a Uint8Array at once), or { tag: "lane", val: "u8004:..." }.

const JSON_PREFIX = Uint8Array.of(0x80, 0x04); // multicodec 0x0200 (json) as a varint
const JSON_LANE = "u8004:"; // the same prefix on the bulk lane, before the JSON text
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });
const NOT_JSON = "this component speaks JSON only (airssys run --codec json)";

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

/** JSON text in, JSON text out. */
function handleJson(text) {
  let value;
  try {
    value = JSON.parse(text);
  } catch {
    throw "the payload is not valid JSON";
  }
  return JSON.stringify(greet(value));
}

/** JSON text as a JSON message: the prefix, then the text's UTF-8. */
function jsonMessage(text) {
  const body = encoder.encode(text);
  const message = new Uint8Array(JSON_PREFIX.length + body.length);
  message.set(JSON_PREFIX);
  message.set(body, JSON_PREFIX.length);
  return message;
}

function handleBytes(payload) {
  if (payload.length < 2 || payload[0] !== JSON_PREFIX[0] || payload[1] !== JSON_PREFIX[1]) {
    throw NOT_JSON;
  }
  let text;
  try {
    text = decoder.decode(payload.subarray(2));
  } catch {
    throw "the payload is not valid JSON (not UTF-8)";
  }
  return jsonMessage(handleJson(text));
}

function handleLane(lane) {
  if (lane.startsWith(JSON_LANE)) {
    return { tag: "bytes", val: jsonMessage(handleJson(lane.slice(JSON_LANE.length))) };
  }
  // "a" (ASCII: no JSON prefix), "x" (not UTF-8) or another prefix: not a JSON message
  if (/^(a|x|u[0-9a-f]*:)/.test(lane)) {
    throw NOT_JSON;
  }
  throw "the bulk lane carries 'a' + ASCII, 'u' + prefix hex + ':' + text or 'x' + hex";
}

// A thrown string becomes err(string): the message fails, the component keeps running.
function failing(error) {
  return typeof error === "string" ? error : String(error?.message ?? error);
}

export const handler = {
  handleMessage(_sender, payload) {
    try {
      return handleBytes(payload);
    } catch (error) {
      throw failing(error);
    }
  },
};

export const bulkText = {
  handleMessage(_sender, lane) {
    try {
      return handleLane(lane);
    } catch (error) {
      throw failing(error);
    }
  },
};
