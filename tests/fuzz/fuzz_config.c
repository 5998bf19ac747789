/* fuzz_config.c - libFuzzer target for the converter's config.json reader
 * (owl_conv_cfg_from_json, weights_tool/config.c) and the tensor/stage plan
 * built from it (owl_conv_plan_build, weights_tool/plan.c): a checkpoint's
 * config.json is untrusted input whose numbers size everything after it.
 * Input: the config.json text. On success the plan is built for two file
 * types and two memory budgets; its tensors must have positive dims and the
 * stages must cover the layers in order. */
#include <stdint.h>
#include <string.h>

#include "../../weights_tool/convert.h"
#include "fuzz_util.h"

static void check_plan(const owl_conv_plan *p)
{
    OWL_FUZZ_CHECK(p->n_stages >= 1 && p->n_stages <= OWL_CONV_MAX_STAGES);
    OWL_FUZZ_CHECK(p->stage_layer[0] == 0 && p->stage_layer[p->n_stages] == (uint32_t)p->cfg.layers);
    for (uint32_t s = 0; s < p->n_stages; s++) {
        OWL_FUZZ_CHECK(p->stage_layer[s] <= p->stage_layer[s + 1]);
        size_t first, end;
        owl_conv_stage_range(p, s, &first, &end);
        OWL_FUZZ_CHECK(first <= end && end <= p->n);
    }
    for (size_t i = 0; i < p->n; i++) {
        const owl_conv_tensor *t = &p->t[i];
        OWL_FUZZ_CHECK(t->n_dims >= 1 && t->n_dims <= 2);
        OWL_FUZZ_CHECK(t->ne[0] > 0 && (t->n_dims == 1 || t->ne[1] > 0));
        OWL_FUZZ_CHECK(memchr(t->name, 0, sizeof t->name) && memchr(t->key, 0, sizeof t->key));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    owl_json *j = NULL;
    owl_err err;
    if (owl_json_parse((const char *)data, size, &j, &err) != OWL_OK)
        return 0;
    owl_conv_cfg cfg;
    owl_status st = owl_conv_cfg_from_json(j, &cfg, &err);
    owl_fuzz_verbose("config", st, &err, 0);
    if (st == OWL_OK) {
        OWL_FUZZ_CHECK(memchr(cfg.name, 0, sizeof cfg.name) && memchr(cfg.aspect, 0, sizeof cfg.aspect));
        static const owl_conv_ftype ft[2] = {OWL_CONV_TYPE_Q4_K_M, OWL_CONV_TYPE_F32};
        static const uint32_t budget[2] = {OWL_CONV_DEFAULT_BUDGET_MIB, 64};
        for (int k = 0; k < 2; k++) {
            owl_conv_plan plan;
            memset(&plan, 0, sizeof plan);
            st = owl_conv_plan_build(&cfg, ft[k], budget[k], &plan, &err);
            owl_fuzz_verbose("plan", st, &err, plan.n);
            if (st == OWL_OK)
                check_plan(&plan);
            owl_conv_plan_free(&plan);
        }
    }
    owl_json_free(j);
    return 0;
}
