/* Model names as servers declare them (`models=a,b@v2,lora:a-sql`) and the one matching rule
 * shared by config validation and request routing. */
#ifndef VORO_CLUSTER_MODEL_REF_H
#define VORO_CLUSTER_MODEL_REF_H

#include <stdbool.h>
#include <stddef.h>

#include "cluster/config.h"

/*
 * Grammar: a model name is 1..63 bytes of letters, digits, '_', '-', '.', '/', ':' (so
 * "meta-llama/Llama-3.1-8B" and "llama3:8b" are names); a version is 1..31 bytes of letters,
 * digits, '_', '-', '.'. A requested model is "name" or "name@version".
 *
 * Matching (request -> declared ref):
 *   "name"          matches a declared "name" of any version (or unversioned), or adapter "name";
 *   "name@version"  matches only a declared "name@version" (adapters have no version).
 * The name a matching server serves (what a rewrite sends) is always the declared name without
 * version, which is the requested name without its "@version".
 */

/* True when s[0..len) is a valid model name / version. */
bool voro_model_name_valid(const char *s, size_t len);
bool voro_model_version_valid(const char *s, size_t len);

/* True when `model` (len bytes, "name" or "name@version", need not be NUL-terminated) is
 * served by the declared `ref`. Invalid requested names never match. */
bool voro_model_ref_match(const struct voro_model_ref *ref, const char *model, size_t len);

#endif
