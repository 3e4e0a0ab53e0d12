/* Formats Voro's own error responses (JSON in OpenAI's error shape). */
#include "node/http/http_error.h"

#include <stdio.h>
#include <string.h>

#include "proto/http1.h"

/* Copies `s` as JSON string content (quotes and control characters escaped). */
static size_t json_escape(char *out, size_t cap, const char *s)
{
    size_t n = 0;
    for (; s && *s && n + 7 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            out[n++] = '\\';
            out[n++] = (char)ch;
        } else if (ch < 0x20) {
            n += (size_t)snprintf(out + n, cap - n, "\\u%04x", ch);
        } else {
            out[n++] = (char)ch;
        }
    }
    out[n] = '\0';
    return n;
}

size_t voro_http_error_format(char *out, size_t cap, int status, const char *message, const char *type,
                              const char *param, const char *code, bool keep_alive)
{
    char msg[256], prm[96], cde[64], body[600];
    json_escape(msg, sizeof(msg), message ? message : voro_http1_status_text(status));
    if (!type)
        type = status >= 500 ? "server_error" : "invalid_request_error";
    char param_json[120] = "null";
    if (param) {
        json_escape(prm, sizeof(prm), param);
        snprintf(param_json, sizeof(param_json), "\"%s\"", prm);
    }
    if (code)
        json_escape(cde, sizeof(cde), code);
    else
        snprintf(cde, sizeof(cde), "%d", status);
    int blen = snprintf(body, sizeof(body), "{\"error\":{\"message\":\"%s\",\"type\":\"%s\",\"param\":%s,\"code\":\"%s\"}}\n",
                        msg, type, param_json, cde);
    if (blen < 0 || (size_t)blen >= sizeof(body))
        return 0;
    int n = snprintf(out, cap,
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s", status,
                     voro_http1_status_text(status), blen, keep_alive ? "" : "Connection: close\r\n", body);
    if (n < 0 || (size_t)n >= cap)
        return 0;
    return (size_t)n;
}
