/* Model name validation and the request-to-declared-model matching rule. */
#include "cluster/model_ref.h"

#include <string.h>

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
           c == '.';
}

bool voro_model_name_valid(const char *s, size_t len)
{
    if (!s || !len || len >= VORO_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!name_char(s[i]) && s[i] != '/' && s[i] != ':')
            return false;
    return true;
}

bool voro_model_version_valid(const char *s, size_t len)
{
    if (!s || !len || len >= sizeof(((struct voro_model_ref *)0)->version))
        return false;
    for (size_t i = 0; i < len; i++)
        if (!name_char(s[i]))
            return false;
    return true;
}

bool voro_model_ref_match(const struct voro_model_ref *ref, const char *model, size_t len)
{
    if (!ref || !model)
        return false;
    const char *at = memchr(model, '@', len);
    size_t name_len = at ? (size_t)(at - model) : len;
    if (!voro_model_name_valid(model, name_len))
        return false;
    if (strlen(ref->name) != name_len || memcmp(ref->name, model, name_len) != 0)
        return false;
    if (!at)
        return true;
    size_t ver_len = len - name_len - 1;
    if (ref->adapter || !voro_model_version_valid(at + 1, ver_len))
        return false;
    return strlen(ref->version) == ver_len && !memcmp(ref->version, at + 1, ver_len);
}
