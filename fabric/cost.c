/* SPDX-License-Identifier: MIT */
/* fabric/cost: usage in the fabric's own terms, priced per component. */
#include "fabric/fabric.h"

void fab_usage_openai(uint64_t prompt_tokens, uint64_t cached_tokens, uint64_t completion_tokens,
                      fab_usage *ret) {
        /* prompt_tokens includes the cached ones: count them once, at the cached price. */
        if (cached_tokens > prompt_tokens)
                cached_tokens = prompt_tokens;
        *ret = (fab_usage){
                .input = prompt_tokens - cached_tokens,
                .cached = cached_tokens,
                .output = completion_tokens,
                .reported = true,
        };
}

void fab_usage_anthropic(uint64_t input_tokens, uint64_t cache_creation, uint64_t cache_read,
                         uint64_t output_tokens, fab_usage *ret) {
        /* The cache counts are not inside input_tokens: each is its own component. */
        *ret = (fab_usage){
                .input = input_tokens,
                .cached = cache_read,
                .cache_write = cache_creation,
                .output = output_tokens,
                .reported = true,
        };
}

double fab_cost(const fab_price *price, const fab_usage *usage) {
        if (!price || !usage)
                return 0;
        return ((double) usage->input * price->input + (double) usage->cached * price->cached +
                (double) usage->cache_write * price->cache_write + (double) usage->output * price->output) /
               1e6;
}
