/* Error responses Voro itself writes: a status line, a short JSON body in OpenAI's error
 * shape ({"error":{"message","type","param","code"}}) so inference clients can read it too. */
#ifndef VORO_NODE_HTTP_ERROR_H
#define VORO_NODE_HTTP_ERROR_H

#include <stdbool.h>
#include <stddef.h>

/* Writes a whole response into out[0..cap); returns its length, or 0 if it does not fit.
 * `type` defaults from the status ("invalid_request_error" for 4xx, "server_error" for 5xx);
 * `param` and `code` may be NULL (code then is the status number as a string). */
size_t voro_http_error_format(char *out, size_t cap, int status, const char *message, const char *type,
                              const char *param, const char *code, bool keep_alive);

#endif
