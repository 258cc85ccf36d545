//! airssys.zig: the airssys handler ABI for Zig components (wit/airssys.wit, world
//! handler-text), the canonical ABI written by hand. `exportHandler(handle)` exports
//!   airssys:component/handler@0.1.0#handle-message    (payload as list<u8>)
//!   airssys:component/bulk-text@0.1.0#handle-message  (payload as one string: the
//!       "a", "u" and "x" forms; the host uses this one)
//! with their post-return functions and cabi_realloc, and calls `handle` once per
//! message. Memory from `alloc` lives until the reply has been copied out (the end of
//! the message): keep state across messages in container-level variables.
//! Keep this file as it is; write the component in app.zig.
const std = @import("std");
const builtin = @import("builtin");

/// Multicodec codes of the payload formats (airssys.codec).
pub const json: u64 = 0x0200;
pub const raw: u64 = 0x55;
pub const cbor: u64 = 0x51;
pub const msgpack: u64 = 0x0201;

/// A message: its multicodec code and its body (the bytes after the prefix).
pub const Message = struct {
    codec: u64,
    body: []const u8,
};

/// What a handler returns: a reply, no reply, or the reason this message fails (UTF-8).
pub const Outcome = union(enum) {
    reply: Message,
    none,
    fail: []const u8,
};

/// A handler: one message from `sender` (an address, UTF-8).
pub const Handler = fn (sender: []const u8, message: Message) Outcome;

pub const Level = enum(i32) { trace, debug, info, warn, err };

const on_wasm = builtin.target.cpu.arch == .wasm32;
const page: u64 = 65536;
const prefix_max = 16; // bytes of multicodec prefix a "u" lane string carries

extern var __heap_base: u8;
var arena_start: usize = 0;
var arena_top: usize = 0;

/// `size` bytes until the end of the message; null when the memory cap is reached.
pub fn alloc(size: usize) ?[*]u8 {
    if (arena_start == 0) {
        arena_start = std.mem.alignForward(usize, @intFromPtr(&__heap_base), 16);
        arena_top = arena_start;
    }
    const start: u64 = std.mem.alignForward(u64, arena_top, 8);
    const end: u64 = start + size;
    const have: u64 = @as(u64, @wasmMemorySize(0)) * page;
    if (end > have) {
        if (end > std.math.maxInt(u32)) return null;
        const pages: usize = @intCast((end - have + page - 1) / page);
        if (@wasmMemoryGrow(0, pages) < 0) return null;
    }
    arena_top = @intCast(end);
    return @ptrFromInt(@as(usize, @intCast(start)));
}

const Import = struct {
    extern "airssys:component/logging@0.1.0" fn log(level: i32, text: [*]const u8, len: usize) void;
};

/// A log line, bound by the host to this component's name and address (on the host
/// only: a native `zig test` prints nothing).
pub fn log(level: Level, text: []const u8) void {
    if (!on_wasm) return;
    const line = if (std.unicode.utf8ValidateSlice(text)) text else "(a log line that is not UTF-8)";
    Import.log(@intFromEnum(level), line.ptr, line.len);
}

/// The multicodec varint at the start of `data` and its length (0: there is none).
pub fn readPrefix(data: []const u8) struct { codec: u64, len: usize } {
    var value: u64 = 0;
    for (data[0..@min(data.len, 9)], 0..) |byte, i| {
        value |= @as(u64, byte & 0x7f) << @intCast(7 * i);
        if (byte & 0x80 == 0) return .{ .codec = value, .len = i + 1 };
    }
    return .{ .codec = 0, .len = 0 };
}

fn writePrefix(out: []u8, codec: u64) usize {
    var value = codec;
    var n: usize = 0;
    while (true) {
        const byte: u8 = @intCast(value & 0x7f);
        value >>= 7;
        out[n] = byte | @as(u8, if (value != 0) 0x80 else 0);
        n += 1;
        if (value == 0) return n;
    }
}

fn split(payload: []const u8) ?Message {
    const prefix = readPrefix(payload);
    if (prefix.len == 0) return null;
    return .{ .codec = prefix.codec, .body = payload[prefix.len..] };
}

const no_prefix = "the payload does not start with a multicodec prefix";
const bad_lane = "the bulk lane carries 'a' + ASCII, 'u' + prefix hex + ':' + text or 'x' + hex";
const no_memory = "the component's memory cap is too small for this message";
const not_utf8 = "the component's error text is not UTF-8";

const Decoded = union(enum) { message: Message, fail: []const u8 };

/// The message a bulk-lane string holds, or why there is none.
pub fn fromLane(lane: []const u8) Decoded {
    if (lane.len == 0) return .{ .fail = bad_lane };
    const rest = lane[1..];
    switch (lane[0]) {
        'a' => return if (split(rest)) |m| .{ .message = m } else .{ .fail = no_prefix },
        'x' => {
            const bytes = (alloc(rest.len / 2) orelse return .{ .fail = no_memory })[0 .. rest.len / 2];
            _ = std.fmt.hexToBytes(bytes, rest) catch return .{ .fail = bad_lane };
            return if (split(bytes)) |m| .{ .message = m } else .{ .fail = no_prefix };
        },
        'u' => {
            const colon = std.mem.indexOfScalar(u8, rest[0..@min(rest.len, 2 * prefix_max + 1)], ':') orelse
                return .{ .fail = bad_lane };
            var head_buf: [prefix_max]u8 = undefined;
            const head = std.fmt.hexToBytes(&head_buf, rest[0..colon]) catch return .{ .fail = bad_lane };
            const prefix = readPrefix(head);
            if (prefix.len == 0) return .{ .fail = no_prefix };
            const text = rest[colon + 1 ..];
            if (prefix.len == head.len) return .{ .message = .{ .codec = prefix.codec, .body = text } };
            const extra = head[prefix.len..];
            const body = (alloc(extra.len + text.len) orelse return .{ .fail = no_memory })[0 .. extra.len + text.len];
            @memcpy(body[0..extra.len], extra);
            @memcpy(body[extra.len..], text);
            return .{ .message = .{ .codec = prefix.codec, .body = body } };
        },
        else => return .{ .fail = bad_lane },
    }
}

var ret_area: [5]u32 = undefined;

fn addr(ptr: anytype) u32 {
    return @intCast(@intFromPtr(ptr));
}

fn fail(text: []const u8) [*]u32 {
    const said = if (std.unicode.utf8ValidateSlice(text)) text else not_utf8;
    ret_area[0] = 1; // err
    ret_area[1] = addr(said.ptr);
    ret_area[2] = @intCast(said.len);
    return &ret_area;
}

fn noReply() [*]u32 {
    ret_area[0] = 0; // ok
    ret_area[1] = 0; // none
    return &ret_area;
}

fn hexInto(out: []u8, data: []const u8) void {
    const digits = "0123456789abcdef";
    for (data, 0..) |byte, i| {
        out[2 * i] = digits[byte >> 4];
        out[2 * i + 1] = digits[byte & 0xf];
    }
}

/// Export the ABI for `handle` (from a `comptime` block of the component's root file).
pub fn exportHandler(comptime handle: Handler) void {
    if (!on_wasm) return; // a native `zig test` tests the handler itself
    const Abi = struct {
        fn realloc(old: ?[*]u8, old_size: usize, alignment: usize, size: usize) callconv(.c) ?[*]u8 {
            _ = alignment; // the arena aligns to 8, the most the ABI asks for
            const fresh = alloc(size) orelse {
                if (size == 0) return null;
                log(.err, "the memory cap is reached: this message does not fit");
                @trap(); // the host reports the trap and the actor restarts the instance
            };
            if (old) |o| @memcpy(fresh[0..@min(old_size, size)], o[0..@min(old_size, size)]);
            return fresh;
        }

        fn handleMessage(sender: [*]const u8, sender_len: usize, payload: [*]const u8, payload_len: usize) callconv(.c) [*]u32 {
            const message = split(payload[0..payload_len]) orelse return fail(no_prefix);
            const reply = switch (handle(sender[0..sender_len], message)) {
                .reply => |r| r,
                .none => return noReply(),
                .fail => |text| return fail(text),
            };
            const out = (alloc(10 + reply.body.len) orelse return fail(no_memory))[0 .. 10 + reply.body.len];
            const n = writePrefix(out, reply.codec);
            @memcpy(out[n .. n + reply.body.len], reply.body);
            ret_area[0] = 0; // ok
            ret_area[1] = 1; // some
            ret_area[2] = addr(out.ptr); // list<u8>: pointer, length
            ret_area[3] = @intCast(n + reply.body.len);
            return &ret_area;
        }

        fn handleLane(sender: [*]const u8, sender_len: usize, lane: [*]const u8, lane_len: usize) callconv(.c) [*]u32 {
            const message = switch (fromLane(lane[0..lane_len])) {
                .message => |m| m,
                .fail => |text| return fail(text),
            };
            const reply = switch (handle(sender[0..sender_len], message)) {
                .reply => |r| r,
                .none => return noReply(),
                .fail => |text| return fail(text),
            };
            var prefix: [10]u8 = undefined;
            const n = writePrefix(&prefix, reply.codec);
            const text = std.unicode.utf8ValidateSlice(reply.body);
            // "u" + prefix hex + ":" + text, or "x" + hex of prefix and body
            const size = if (text) 2 + 2 * n + reply.body.len else 1 + 2 * (n + reply.body.len);
            const out = (alloc(size) orelse return fail(no_memory))[0..size];
            out[0] = if (text) 'u' else 'x';
            hexInto(out[1 .. 1 + 2 * n], prefix[0..n]);
            if (text) {
                out[1 + 2 * n] = ':';
                @memcpy(out[2 + 2 * n ..], reply.body);
            } else {
                hexInto(out[1 + 2 * n ..], reply.body);
            }
            ret_area[0] = 0; // ok
            ret_area[1] = 1; // some
            ret_area[2] = 0; // reply.lane
            ret_area[3] = addr(out.ptr); // string: pointer, length
            ret_area[4] = @intCast(size);
            return &ret_area;
        }

        // after the host has copied the reply out: the arena is empty again
        fn post(ret: [*]u32) callconv(.c) void {
            _ = ret;
            arena_top = arena_start;
        }
    };
    @export(&Abi.realloc, .{ .name = "cabi_realloc" });
    @export(&Abi.handleMessage, .{ .name = "airssys:component/handler@0.1.0#handle-message" });
    @export(&Abi.handleLane, .{ .name = "airssys:component/bulk-text@0.1.0#handle-message" });
    @export(&Abi.post, .{ .name = "cabi_post_airssys:component/handler@0.1.0#handle-message" });
    @export(&Abi.post, .{ .name = "cabi_post_airssys:component/bulk-text@0.1.0#handle-message" });
}

test "a prefix is read and written back the same" {
    var buf: [10]u8 = undefined;
    const n = writePrefix(&buf, json);
    try std.testing.expectEqualSlices(u8, &.{ 0x80, 0x04 }, buf[0..n]);
    const read = readPrefix(buf[0..n]);
    try std.testing.expectEqual(json, read.codec);
    try std.testing.expectEqual(n, read.len);
    try std.testing.expectEqual(@as(usize, 0), readPrefix(&.{0x80}).len);
}
