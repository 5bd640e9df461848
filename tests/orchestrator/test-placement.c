/* SPDX-License-Identifier: MIT */
/* Placement as a decision (orchestrator/placement.h): selectors, capacity, load, the avoided node; no
 * server. */
#include "orchestrator/placement.h"
#include "tests/tap.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

int main(void) {
        /* Labels and selectors */
        ok(orc_place_labels_match("zone=a,gpu=yes", NULL), "no selector matches");
        ok(orc_place_labels_match("zone=a", "{}"), "{} matches");
        ok(orc_place_labels_match(NULL, "{}"), "{} matches a node without labels");
        ok(orc_place_labels_match("zone=a,gpu=yes", "{\"gpu\":\"yes\"}"), "one pair, present");
        ok(orc_place_labels_match("zone=a,gpu=yes", "{\"gpu\":\"yes\",\"zone\":\"a\"}"),
           "two pairs, both present");
        ok(!orc_place_labels_match("zone=a,gpu=yes", "{\"gpu\":\"yes\",\"zone\":\"b\"}"),
           "two pairs, one differs");
        ok(!orc_place_labels_match("zone=a", "{\"gpu\":\"yes\"}"), "a key the node lacks");
        ok(!orc_place_labels_match(NULL, "{\"gpu\":\"yes\"}"), "a node without labels and a selector");
        ok(!orc_place_labels_match("", "{\"gpu\":\"yes\"}"), "empty labels and a selector");
        ok(!orc_place_labels_match("zone=ab", "{\"zone\":\"a\"}"),
           "a value that is a prefix does not match");
        ok(!orc_place_labels_match("zone=a", "{\"zone\":\"ab\"}"), "a longer value does not match");
        ok(!orc_place_labels_match("xzone=a", "{\"zone\":\"a\"}"), "a key that is a suffix does not match");
        ok(orc_place_labels_match("a=1,,zone=a,", "{\"zone\":\"a\"}"), "empty items and a trailing comma");
        ok(!orc_place_labels_match("zone=a", "{\"zone\":1}"),
           "a value that is not a string matches no node");
        ok(orc_place_labels_match("zone=a", "not json"),
           "an unreadable selector matches (validated on submit)");
        ok(orc_place_labels_match("zone=a", "[\"zone\"]"), "a selector that is not an object matches");

        /* Capacity and load: queue_per_slot 2, so a node of capacity 2 takes 4 */
        {
                orc_place_node n[] = {
                        {.id = "n1", .labels = "zone=a", .alive = true, .capacity = 2, .load = 2},
                        {.id = "n2", .labels = "zone=b", .alive = true, .capacity = 4, .load = 2},
                        {.id = "n3", .labels = "zone=a", .alive = false, .capacity = 8, .load = 0},
                };
                ok(orc_place_pick(n, N(n), 2, NULL, NULL) == 1,
                   "least loaded by load / capacity (n2: 0.5 < 1)");
                ok(orc_place_pick(n, N(n), 2, "{\"zone\":\"a\"}", NULL) == 0,
                   "the selector leaves n1 (n3, idle, is not alive)");
                ok(orc_place_pick(n, N(n), 2, "{\"zone\":\"c\"}", NULL) == -1, "no node matches: -1");
                n[0].load = 4;
                ok(orc_place_pick(n, N(n), 2, "{\"zone\":\"a\"}", NULL) == -1,
                   "n1 full (load 4 = capacity 2 x queue_per_slot 2): -1");
                n[0].load = 3;
                ok(orc_place_pick(n, N(n), 2, "{\"zone\":\"a\"}", NULL) == 0, "n1 with one queue slot free");
                ok(orc_place_pick(n, N(n), 1, "{\"zone\":\"a\"}", NULL) == -1,
                   "queue_per_slot 1: a node takes its capacity only");
                n[1].load = 16;
                n[0].load = 4;
                ok(orc_place_pick(n, N(n), 2, NULL, NULL) == -1, "every live node full: -1");
                n[0].capacity = 0;
                n[0].load = 0;
                n[1].load = 0;
                ok(orc_place_pick(n, N(n), 2, "{\"zone\":\"a\"}", NULL) == -1, "capacity 0 takes nothing");
                ok(orc_place_pick(NULL, 0, 2, NULL, NULL) == -1, "no nodes: -1");
        }

        /* Ties: the first of equals */
        {
                orc_place_node n[] = {
                        {.id = "n1", .alive = true, .capacity = 2, .load = 1},
                        {.id = "n2", .alive = true, .capacity = 4, .load = 2},
                        {.id = "n3", .alive = true, .capacity = 4, .load = 1},
                };
                ok(orc_place_pick(n, 2, 2, NULL, NULL) == 0, "equal load (0.5, 0.5): the first");
                ok(orc_place_pick(n, 3, 2, NULL, NULL) == 2, "a lower ratio wins over order (0.25)");
                /* Placing one after another spreads: the caller adds each placement to the load */
                int counts[3] = {0};
                for (int i = 0; i < 9; i++) {
                        int k = orc_place_pick(n, 3, 1, NULL, NULL);
                        if (k < 0)
                                break;
                        counts[k]++;
                        n[k].load++;
                }
                ok(counts[0] == 1 && counts[1] == 2 && counts[2] == 3 &&
                           orc_place_pick(n, 3, 1, NULL, NULL) == -1,
                   "filled one by one to capacity: %d, %d, %d placed, then -1", counts[0], counts[1],
                   counts[2]);
        }

        /* The node a retry failed on */
        {
                orc_place_node n[] = {
                        {.id = "n1", .labels = "zone=a", .alive = true, .capacity = 4, .load = 0},
                        {.id = "n2", .labels = "zone=a", .alive = true, .capacity = 4, .load = 3},
                        {.id = "n3", .labels = "zone=b", .alive = true, .capacity = 4, .load = 0},
                };
                ok(orc_place_pick(n, N(n), 1, "{\"zone\":\"a\"}", "n1") == 1,
                   "avoid n1: the busier n2 rather than the node that failed");
                ok(orc_place_pick(n, N(n), 1, "{\"zone\":\"a\"}", "n9") == 0,
                   "avoiding an unknown node changes nothing");
                ok(orc_place_pick(n, N(n), 1, "{\"zone\":\"a\"}", NULL) == 0, "no avoid: the least loaded");
                n[1].load = 4;
                ok(orc_place_pick(n, N(n), 1, "{\"zone\":\"a\"}", "n1") == -1,
                   "the only alternative is full: wait for it, not back to n1");
                n[1].alive = false;
                ok(orc_place_pick(n, N(n), 1, "{\"zone\":\"a\"}", "n1") == 0,
                   "the only alternative is dead: back to n1");
                n[1].alive = true;
                n[1].labels = "zone=c";
                ok(orc_place_pick(n, N(n), 1, "{\"zone\":\"a\"}", "n1") == 0,
                   "no alternative matches the selector: back to n1");
                ok(orc_place_pick(n, N(n), 1, NULL, "n1") == 2, "without a selector n3 is an alternative");
                n[0].load = 4;
                ok(orc_place_pick(n, N(n), 1, "{\"zone\":\"a\"}", "n1") == -1,
                   "the avoided node full too: -1");
                n[0].load = 0;
                n[0].alive = false;
                ok(orc_place_pick(n, N(n), 1, "{\"zone\":\"a\"}", "n1") == -1, "the avoided node dead: -1");
        }
        {
                orc_place_node n[] = {
                        {.id = "n1", .alive = true, .capacity = 4, .load = 0},
                        {.id = "n2", .alive = true, .capacity = 0, .load = 0},
                };
                ok(orc_place_pick(n, N(n), 1, NULL, "n1") == -1,
                   "a live alternative of capacity 0 still counts: the step waits (as before)");
                n[1].alive = false;
                ok(orc_place_pick(n, N(n), 1, NULL, "n1") == 0, "alone, the avoided node takes it");
        }
        return done_testing();
}
