//! {{name}}: an airssys component in Zig. It answers every message with the message
//! itself (any codec) and counts the messages it has answered.
//!
//! airssys.zig is the handler ABI (keep it as it is). `airssys build` compiles this
//! file for wasm32-freestanding with zig and makes the component with wasm-tools;
//! `zig test app.zig` runs the tests below natively.
const std = @import("std");
const airssys = @import("airssys.zig");

comptime {
    airssys.exportHandler(handle);
}

// State lives as long as the instance; a restart starts it over.
var answered: u64 = 0;

fn handle(sender: []const u8, message: airssys.Message) airssys.Outcome {
    _ = sender;
    if (message.body.len == 0) {
        // this message fails; the component keeps running
        return .{ .fail = "send a message with a body, e.g. {\"name\": \"Ada\"}" };
    }
    answered += 1;
    if (answered == 1) airssys.log(.info, "answering my first message");
    return .{ .reply = message }; // the same codec and body: an echo
}

test "answers with the message itself and counts" {
    const before = answered;
    const message = airssys.Message{ .codec = airssys.json, .body = "{\"name\": \"Ada\"}" };
    const outcome = handle("/test", message);
    try std.testing.expectEqualStrings(message.body, outcome.reply.body);
    try std.testing.expectEqual(airssys.json, outcome.reply.codec);
    try std.testing.expectEqual(before + 1, answered);
}

test "an empty message fails with a reason" {
    const outcome = handle("/test", .{ .codec = airssys.json, .body = "" });
    try std.testing.expect(std.mem.indexOf(u8, outcome.fail, "send a message") != null);
}
