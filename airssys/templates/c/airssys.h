/* airssys.h: the airssys handler ABI for C components (wit/airssys.wit, world
 * handler-text). airssys.c implements the canonical ABI: it exports
 * handler.handle-message (list<u8>) and bulk-text.handle-message (one string), turns
 * either into one call of airssys_handle, and writes the reply back.
 *
 * Memory: airssys_alloc hands out memory that lives until the reply has been copied
 * out (the end of the message); keep state across messages in static variables.
 */
#ifndef AIRSSYS_H
#define AIRSSYS_H

#include <stddef.h>
#include <stdint.h>

/* Multicodec codes of the payload formats (airssys.codec). */
#define AIRSSYS_JSON 0x0200u
#define AIRSSYS_RAW 0x55u
#define AIRSSYS_CBOR 0x51u
#define AIRSSYS_MSGPACK 0x0201u

/* Bytes (not NUL-terminated). */
typedef struct {
    const uint8_t *data;
    size_t len;
} airssys_bytes;

/* A message: its multicodec code and its body (the bytes after the prefix). */
typedef struct {
    uint64_t codec;
    const uint8_t *data;
    size_t len;
} airssys_message;

/* What airssys_handle returns. */
typedef enum {
    AIRSSYS_REPLY = 0,    /* *reply is the answer */
    AIRSSYS_NO_REPLY = 1, /* nothing to answer */
    AIRSSYS_ERROR = 2     /* reply->data/len is the reason (UTF-8): this message fails */
} airssys_outcome;

/* Implemented by the component: one message from `sender` (an address, UTF-8). */
airssys_outcome airssys_handle(airssys_bytes sender, airssys_message message,
                               airssys_message *reply);

/* Memory until the end of the message (NULL when the memory cap is reached). */
void *airssys_alloc(size_t size);

/* Log levels of airssys:component/logging. */
typedef enum {
    AIRSSYS_TRACE = 0,
    AIRSSYS_DEBUG = 1,
    AIRSSYS_INFO = 2,
    AIRSSYS_WARN = 3,
    AIRSSYS_ERROR_LEVEL = 4
} airssys_level;

/* A log line, bound by the host to this component's name and address. */
void airssys_log(airssys_level level, const char *text, size_t len);

#endif
