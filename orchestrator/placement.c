/* SPDX-License-Identifier: MIT */
/* Placement as a decision (placement.h); the scheduler thread builds the node snapshot and carries it out.
 */
#include <stdio.h>
#include <string.h>

#include "common/json.h"
#include "orchestrator/placement.h"

#define SELECTOR_MAX_BYTES (1 << 20)

/* selector: a parsed JSON object, or NULL for "any node" */
static bool labels_match_parsed(const char *labels, yajl_val sel) {
        if (!sel)
                return true;
        for (size_t i = 0; i < sel->u.object.len; i++) {
                const char *want = YAJL_GET_STRING(sel->u.object.values[i]);
                char pair[1200];
                bool found = false;
                size_t plen;

                if (!want)
                        return false;
                snprintf(pair, sizeof(pair), "%s=%s", sel->u.object.keys[i], want);
                plen = strlen(pair);
                for (const char *p = labels; p && *p;) {
                        size_t n = strcspn(p, ",");
                        if (n == plen && strncmp(p, pair, n) == 0)
                                found = true;
                        p += n;
                        if (*p == ',')
                                p++;
                }
                if (!found)
                        return false;
        }
        return true;
}

/* NULL (any node) for no selector, "{}" and one that does not parse as an object. */
static yajl_val selector_parse(const char *selector_json) {
        yajl_val sel = NULL;

        if (!selector_json || strcmp(selector_json, "{}") == 0)
                return NULL;
        if (au_json_parse(selector_json, strlen(selector_json), SELECTOR_MAX_BYTES, &sel, NULL) < 0)
                return NULL;
        if (!YAJL_IS_OBJECT(sel)) {
                yajl_tree_free(sel);
                return NULL;
        }
        return sel;
}

bool orc_place_labels_match(const char *labels, const char *selector_json) {
        _cleanup_json_ yajl_val sel = selector_parse(selector_json);
        return labels_match_parsed(labels, sel);
}

int orc_place_pick(const orc_place_node *nodes, size_t n, uint32_t queue_per_slot, const char *selector,
                   const char *avoid) {
        _cleanup_json_ yajl_val sel = selector_parse(selector);
        int best = -1, best_avoided = -1;
        double best_load = 0, best_avoided_load = 0;

        for (size_t i = 0; i < n; i++) {
                const orc_place_node *node = &nodes[i];
                uint32_t slots = node->capacity * queue_per_slot;
                double load;

                if (!node->alive || node->capacity == 0 || node->load >= slots ||
                    !labels_match_parsed(node->labels, sel))
                        continue;
                load = (double) node->load / (double) node->capacity;
                if (avoid && strcmp(node->id, avoid) == 0) {
                        if (best_avoided < 0 || load < best_avoided_load) {
                                best_avoided = (int) i;
                                best_avoided_load = load;
                        }
                        continue;
                }
                if (best < 0 || load < best_load) {
                        best = (int) i;
                        best_load = load;
                }
        }
        /* A retry avoids the node that failed it, unless no other node can take it. */
        if (best < 0 && best_avoided >= 0) {
                bool other_exists = false;
                for (size_t i = 0; i < n; i++)
                        other_exists |= nodes[i].alive && (int) i != best_avoided &&
                                        labels_match_parsed(nodes[i].labels, sel);
                if (!other_exists)
                        best = best_avoided;
        }
        return best;
}
