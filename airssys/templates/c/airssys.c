/* airssys.c: the canonical ABI of the airssys world `handler-text` (wit/airssys.wit),
 * written by hand (no libc: built for wasm32-freestanding). It exports
 *   airssys:component/handler@0.1.0#handle-message    (payload as list<u8>)
 *   airssys:component/bulk-text@0.1.0#handle-message  (payload as one string: the
 *       "a", "u" and "x" forms; the host uses this one)
 * with their post-return functions and cabi_realloc, and calls airssys_handle once per
 * message. Memory comes from a bump arena that is emptied after each reply has been
 * copied out (post-return). Keep this file as it is; write the component in app.c.
 */
#include "airssys.h"

extern unsigned char __heap_base;

#define PAGE 65536u
#define PREFIX_MAX 16u /* bytes of multicodec prefix a "u" lane string carries */

static uintptr_t arena_start;
static uintptr_t arena_top;

void *airssys_alloc(size_t size) {
    if (!arena_start) {
        arena_start = arena_top = ((uintptr_t)&__heap_base + 15u) & ~(uintptr_t)15u;
    }
    uint64_t start = ((uint64_t)arena_top + 7u) & ~(uint64_t)7u;
    uint64_t end = start + size;
    uint64_t have = (uint64_t)__builtin_wasm_memory_size(0) * PAGE;
    if (end > have) {
        uint64_t pages = (end - have + PAGE - 1) / PAGE;
        if (end > 0xFFFFFFFFull || __builtin_wasm_memory_grow(0, (size_t)pages) == (size_t)-1) {
            return 0;
        }
    }
    arena_top = (uintptr_t)end;
    return (void *)(uintptr_t)start;
}

static void copy(uint8_t *to, const uint8_t *from, size_t n) {
    __builtin_memcpy(to, from, n);
}

/* Called by the host to make room for arguments; never fails quietly. */
__attribute__((export_name("cabi_realloc"))) void *cabi_realloc(void *old, size_t old_size,
                                                                 size_t align, size_t size) {
    (void)align; /* the arena aligns to 8, the most the ABI asks for */
    uint8_t *fresh = airssys_alloc(size);
    if (!fresh && size) {
        static const char full[] = "the memory cap is reached: this message does not fit";
        airssys_log(AIRSSYS_ERROR_LEVEL, full, sizeof full - 1);
        __builtin_trap(); /* the host reports the trap and the actor restarts the instance */
    }
    if (old && old_size) {
        copy(fresh, old, old_size < size ? old_size : size);
    }
    return fresh;
}

/* --- payloads ---------------------------------------------------------------------- */

/* The multicodec varint at the start of data: its length, or 0 when there is none. */
static size_t read_prefix(const uint8_t *data, size_t len, uint64_t *codec) {
    uint64_t value = 0;
    for (size_t i = 0; i < len && i < 9; i++) {
        value |= (uint64_t)(data[i] & 0x7Fu) << (7 * i);
        if (!(data[i] & 0x80u)) {
            *codec = value;
            return i + 1;
        }
    }
    return 0;
}

static size_t write_prefix(uint8_t *out, uint64_t codec) {
    size_t n = 0;
    do {
        uint8_t byte = codec & 0x7Fu;
        codec >>= 7;
        out[n++] = byte | (codec ? 0x80u : 0);
    } while (codec);
    return n;
}

static int is_utf8(const uint8_t *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        uint8_t c = s[i];
        if (c < 0x80u) {
            i++;
            continue;
        }
        size_t n;
        uint32_t min, cp;
        if ((c & 0xE0u) == 0xC0u) {
            n = 1, min = 0x80u, cp = c & 0x1Fu;
        } else if ((c & 0xF0u) == 0xE0u) {
            n = 2, min = 0x800u, cp = c & 0x0Fu;
        } else if ((c & 0xF8u) == 0xF0u) {
            n = 3, min = 0x10000u, cp = c & 0x07u;
        } else {
            return 0;
        }
        if (len - i <= n) {
            return 0;
        }
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xC0u) != 0x80u) {
                return 0;
            }
            cp = (cp << 6) | (s[i + k] & 0x3Fu);
        }
        if (cp < min || cp > 0x10FFFFu || (cp >= 0xD800u && cp <= 0xDFFFu)) {
            return 0;
        }
        i += n + 1;
    }
    return 1;
}

static int hex_value(uint8_t c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Hex digits into bytes; 0 on a bad digit or an odd count. */
static int unhex(const uint8_t *hex, size_t len, uint8_t *out) {
    if (len % 2) return 0;
    for (size_t i = 0; i < len / 2; i++) {
        int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return 0;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 1;
}

static void tohex(const uint8_t *data, size_t len, uint8_t *out) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = (uint8_t)digits[data[i] >> 4];
        out[2 * i + 1] = (uint8_t)digits[data[i] & 0xFu];
    }
}

/* The message a payload (prefix + body) holds; 0 when it has no prefix. */
static int split(const uint8_t *data, size_t len, airssys_message *message) {
    size_t n = read_prefix(data, len, &message->codec);
    message->data = data + n;
    message->len = len - n;
    return n != 0;
}

static const char NO_PREFIX[] = "the payload does not start with a multicodec prefix";
static const char BAD_LANE[] =
    "the bulk lane carries 'a' + ASCII, 'u' + prefix hex + ':' + text or 'x' + hex";
static const char NO_MEMORY[] = "the component's memory cap is too small for this message";

/* The message a bulk-lane string holds; the reason (NUL-terminated) when there is none. */
static const char *from_lane(const uint8_t *lane, size_t len, airssys_message *message) {
    if (len && lane[0] == 'a') {
        return split(lane + 1, len - 1, message) ? 0 : NO_PREFIX;
    }
    if (len && lane[0] == 'x') {
        uint8_t *bytes = airssys_alloc(len / 2);
        if (!bytes) return NO_MEMORY;
        if (!unhex(lane + 1, len - 1, bytes)) return BAD_LANE;
        return split(bytes, (len - 1) / 2, message) ? 0 : NO_PREFIX;
    }
    if (len && lane[0] == 'u') {
        for (size_t colon = 1; colon < len && colon <= 2 * PREFIX_MAX + 1; colon++) {
            if (lane[colon] != ':') continue;
            uint8_t head[PREFIX_MAX];
            size_t n = (colon - 1) / 2;
            if (!unhex(lane + 1, colon - 1, head)) return BAD_LANE;
            size_t used = read_prefix(head, n, &message->codec);
            if (!used) return NO_PREFIX;
            const uint8_t *text = lane + colon + 1;
            size_t text_len = len - colon - 1;
            if (used == n) { /* the usual case: the text is the body, not copied */
                message->data = text;
                message->len = text_len;
                return 0;
            }
            uint8_t *body = airssys_alloc(n - used + text_len);
            if (!body) return NO_MEMORY;
            copy(body, head + used, n - used);
            copy(body + n - used, text, text_len);
            message->data = body;
            message->len = n - used + text_len;
            return 0;
        }
    }
    return BAD_LANE;
}

/* --- the exports ------------------------------------------------------------------- */

static uint32_t ret_area[5];

static const char NOT_UTF8[] = "the component's error text is not UTF-8";

/* result::err(text) at ret_area */
static uint32_t *fail(const char *text, size_t len) {
    if (!is_utf8((const uint8_t *)text, len)) {
        text = NOT_UTF8, len = sizeof NOT_UTF8 - 1;
    }
    ret_area[0] = 1;
    ret_area[1] = (uint32_t)(uintptr_t)text;
    ret_area[2] = (uint32_t)len;
    return ret_area;
}

static uint32_t *no_reply(void) {
    ret_area[0] = 0; /* ok */
    ret_area[1] = 0; /* none */
    return ret_area;
}

__attribute__((export_name("airssys:component/handler@0.1.0#handle-message"))) uint32_t *
airssys_export_handle_message(const uint8_t *sender, size_t sender_len, const uint8_t *payload,
                              size_t payload_len) {
    airssys_message message, reply = {0, 0, 0};
    if (!split(payload, payload_len, &message)) {
        return fail(NO_PREFIX, sizeof NO_PREFIX - 1);
    }
    airssys_bytes from = {sender, sender_len};
    switch (airssys_handle(from, message, &reply)) {
    case AIRSSYS_REPLY:
        break;
    case AIRSSYS_NO_REPLY:
        return no_reply();
    default:
        return fail((const char *)reply.data, reply.len);
    }
    uint8_t *out = airssys_alloc(10 + reply.len);
    if (!out) {
        return fail(NO_MEMORY, sizeof NO_MEMORY - 1);
    }
    size_t n = write_prefix(out, reply.codec);
    copy(out + n, reply.data, reply.len);
    ret_area[0] = 0;                          /* ok */
    ret_area[1] = 1;                          /* some */
    ret_area[2] = (uint32_t)(uintptr_t)out;   /* list<u8>: pointer, length */
    ret_area[3] = (uint32_t)(n + reply.len);
    return ret_area;
}

__attribute__((export_name("airssys:component/bulk-text@0.1.0#handle-message"))) uint32_t *
airssys_export_bulk_text(const uint8_t *sender, size_t sender_len, const uint8_t *lane,
                         size_t lane_len) {
    airssys_message message, reply = {0, 0, 0};
    const char *malformed = from_lane(lane, lane_len, &message);
    if (malformed) {
        size_t len = 0;
        while (malformed[len]) len++;
        return fail(malformed, len);
    }
    airssys_bytes from = {sender, sender_len};
    switch (airssys_handle(from, message, &reply)) {
    case AIRSSYS_REPLY:
        break;
    case AIRSSYS_NO_REPLY:
        return no_reply();
    default:
        return fail((const char *)reply.data, reply.len);
    }
    uint8_t prefix[10];
    size_t n = write_prefix(prefix, reply.codec);
    int text = is_utf8(reply.data, reply.len);
    /* "u" + prefix hex + ":" + text, or "x" + hex of prefix and body */
    size_t size = text ? 2 + 2 * n + reply.len : 1 + 2 * (n + reply.len);
    uint8_t *out = airssys_alloc(size);
    if (!out) {
        return fail(NO_MEMORY, sizeof NO_MEMORY - 1);
    }
    out[0] = text ? 'u' : 'x';
    tohex(prefix, n, out + 1);
    if (text) {
        out[1 + 2 * n] = ':';
        copy(out + 2 + 2 * n, reply.data, reply.len);
    } else {
        tohex(reply.data, reply.len, out + 1 + 2 * n);
    }
    ret_area[0] = 0;                          /* ok */
    ret_area[1] = 1;                          /* some */
    ret_area[2] = 0;                          /* reply.lane */
    ret_area[3] = (uint32_t)(uintptr_t)out;   /* string: pointer, length */
    ret_area[4] = (uint32_t)size;
    return ret_area;
}

/* After the host has copied the reply out: the arena is empty again. */
__attribute__((export_name("cabi_post_airssys:component/handler@0.1.0#handle-message"))) void
airssys_post_handle_message(uint32_t *ret) {
    (void)ret;
    arena_top = arena_start;
}

__attribute__((export_name("cabi_post_airssys:component/bulk-text@0.1.0#handle-message"))) void
airssys_post_bulk_text(uint32_t *ret) {
    (void)ret;
    arena_top = arena_start;
}

/* --- imports ----------------------------------------------------------------------- */

__attribute__((import_module("airssys:component/logging@0.1.0"), import_name("log"))) extern void
airssys_import_log(int32_t level, const uint8_t *text, size_t len);

void airssys_log(airssys_level level, const char *text, size_t len) {
    static const char replaced[] = "(a log line that is not UTF-8)";
    if (!is_utf8((const uint8_t *)text, len)) {
        text = replaced, len = sizeof replaced - 1;
    }
    airssys_import_log((int32_t)level, (const uint8_t *)text, len);
}
