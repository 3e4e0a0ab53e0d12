/* SHA-256 (FIPS 180-4) of a buffer as lowercase hex: the hash of a pushed cluster config. */
#ifndef VORO_CLUSTER_SHA256_H
#define VORO_CLUSTER_SHA256_H

#include <stddef.h>

/* Writes 64 hex digits and a NUL into out. */
void voro_sha256_hex(const void *data, size_t len, char out[65]);

#endif
