/* {{name}}: an airssys component in C. It answers every message with the message
 * itself (any codec) and counts the messages it has answered.
 *
 * airssys.h is the handler ABI; airssys.c implements it (keep both as they are).
 * `airssys build` compiles this folder's .c files with zig cc (wasm32-freestanding:
 * no libc) and makes the component with wasm-tools.
 */
#include "airssys.h"

/* State lives as long as the instance; a restart starts it over. */
static uint64_t answered;

static const char EMPTY[] = "send a message with a body, e.g. {\"name\": \"Ada\"}";

airssys_outcome airssys_handle(airssys_bytes sender, airssys_message message,
                               airssys_message *reply) {
    (void)sender;
    if (message.len == 0) {
        reply->data = (const uint8_t *)EMPTY;
        reply->len = sizeof EMPTY - 1;
        return AIRSSYS_ERROR; /* this message fails; the component keeps running */
    }
    answered += 1;
    if (answered == 1) {
        static const char first[] = "answering my first message";
        airssys_log(AIRSSYS_INFO, first, sizeof first - 1);
    }
    *reply = message; /* the same codec and body: an echo */
    return AIRSSYS_REPLY;
}
