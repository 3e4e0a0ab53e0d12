/* libFuzzer target: arbitrary bytes through the INI tokenizer and voro_config_parse, checking invariants. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/config.h"
#include "proto/ini.h"

static void check(int cond)
{
    if (!cond)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct voro_ini it; /* 4 KiB line buffer: keep it off the stack */
    struct voro_ini_event ev;
    voro_ini_init(&it, (const char *)data, size);
    int events = 0;
    for (;;) {
        int rc = voro_ini_next(&it, &ev);
        if (rc == 0)
            break;
        check(rc == 1 || rc == -22);
        if (rc == 1) {
            check(ev.line >= 1 && ev.line <= it.line);
            if (ev.type == VORO_INI_KEY)
                check(ev.key[0] != '\0' && strlen(ev.value) <= VORO_INI_LINE_MAX);
            else
                check(ev.section[0] != '\0');
        } else {
            check(it.error[0] != '\0' && it.error_line == it.line);
        }
        check(++events <= (int)size + 1);
    }

    struct voro_config *cfg = NULL;
    struct voro_config_errors errs = {0};
    int rc = voro_config_parse("fuzz", (const char *)data, size, &cfg, &errs);
    if (rc == 0) {
        check(cfg != NULL && errs.count == 0 && cfg->n_listeners > 0);
        check(cfg->threads >= 1 && cfg->threads <= 256);
        for (size_t i = 0; i < cfg->n_listeners; i++) {
            check(cfg->listeners[i].pool_index < cfg->n_pools);
            check(cfg->listeners[i].bind.len > 0);
        }
        for (size_t i = 0; i < cfg->n_pools; i++) {
            check(cfg->pools[i].n_servers >= 1 && cfg->pools[i].n_servers <= VORO_POOL_MAX_SERVERS);
            for (size_t j = 0; j < cfg->pools[i].n_servers; j++)
                check(cfg->pools[i].servers[j].weight <= 256);
        }
        struct voro_sockaddr sa;
        check(voro_sockaddr_parse(cfg->admin_bind.text, &sa) == 0);
        voro_config_free(cfg);
    } else {
        check(cfg == NULL);
        check(rc == -22 || rc == -12);
        for (size_t i = 0; i < errs.count; i++)
            check(strncmp(errs.items[i].message, "fuzz:", 5) == 0 &&
                  memchr(errs.items[i].message, '\0', sizeof(errs.items[i].message)) != NULL);
    }
    voro_config_errors_free(&errs);
    return 0;
}
