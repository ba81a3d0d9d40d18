/* modules.c -- the attention modules' entries in the network-file parser. */
#include "cbam.h"
#include "eca.h"
#include "net.h"
#include "ram.h"
#include "se.h"

static heed_status build_se(heed_layer **out, heed_settings *s, const int in[3], heed_params *p,
                            const char *name) {
    static const char *const acts[] = {"relu", "silu", "hardswish", NULL};
    static const char *const gates[] = {"sigmoid", "hardsigmoid", NULL};
    static const heed_act_kind act_kinds[] = {HEED_ACT_RELU, HEED_ACT_SILU, HEED_ACT_HARDSWISH};
    heed_se_cfg c = {0};
    int act, gate;
    HEED_TRY(heed_settings_int(s, "r", 0, &c.r)); /* 0: 16, or the hidden width given */
    HEED_TRY(heed_settings_int(s, "hidden", 0, &c.hidden));
    HEED_TRY(heed_settings_choice(s, "act", acts, 0, &act));
    HEED_TRY(heed_settings_choice(s, "gate", gates, 0, &gate));
    c.act = act_kinds[act];
    c.gate = gate ? HEED_GATE_HARDSIGMOID : HEED_GATE_SIGMOID;
    heed_se *l;
    HEED_TRY(heed_se_new(&l, &c, in, p, name));
    *out = &l->base;
    return HEED_OK;
}

static heed_status build_cbam(heed_layer **out, heed_settings *s, const int in[3], heed_params *p,
                              const char *name) {
    heed_cbam_cfg c = {0};
    HEED_TRY(heed_settings_int(s, "r", 16, &c.r));
    HEED_TRY(heed_settings_int(s, "k", 7, &c.k));
    heed_cbam *l;
    HEED_TRY(heed_cbam_new(&l, &c, in, p, name));
    *out = &l->base;
    return HEED_OK;
}

static heed_status build_eca(heed_layer **out, heed_settings *s, const int in[3], heed_params *p,
                             const char *name) {
    heed_eca_cfg c = {0};
    HEED_TRY(heed_settings_int(s, "k", 0, &c.k));
    /* Said here in the file's terms: heed_eca_new's message offers k = 0
     * for "from the channels", which a network file refuses (k left out
     * is how a file asks for it). */
    if (c.k % 2 == 0 && c.k > 0)
        return heed_fail(HEED_ERR_FORMAT, "k=%d must be odd (leave k out to take it from the channels)", c.k);
    heed_eca *l;
    HEED_TRY(heed_eca_new(&l, &c, in, p, name));
    *out = &l->base;
    return HEED_OK;
}

static heed_status build_ram(heed_layer **out, heed_settings *s, const int in[3], heed_params *p,
                             const char *name) {
    heed_ram_cfg c = heed_ram_defaults();
    int seed;
    HEED_TRY(heed_settings_int(s, "glimpses", c.glimpses, &c.glimpses));
    HEED_TRY(heed_settings_int(s, "patch", c.patch, &c.patch));
    HEED_TRY(heed_settings_int(s, "scales", c.scales, &c.scales));
    HEED_TRY(heed_settings_int(s, "glimpse_hidden", c.glimpse_hidden, &c.glimpse_hidden));
    HEED_TRY(heed_settings_int(s, "loc_hidden", c.loc_hidden, &c.loc_hidden));
    HEED_TRY(heed_settings_int(s, "hidden", c.hidden, &c.hidden));
    HEED_TRY(heed_settings_int(s, "classes", c.classes, &c.classes));
    HEED_TRY(heed_settings_int(s, "lstm", c.lstm, &c.lstm));
    HEED_TRY(heed_settings_float(s, "std", c.std, &c.std));
    HEED_TRY(heed_settings_int(s, "samples", c.samples, &c.samples));
    HEED_TRY(heed_settings_int(s, "seed", (int)c.seed, &seed));
    c.seed = (uint64_t)seed;
    heed_ram *l;
    HEED_TRY(heed_ram_new(&l, &c, in, p, name));
    *out = &l->base;
    return HEED_OK;
}

const heed_layer_type heed_module_layer_types[] = {
    {"se", build_se, "[r hidden act gate]"},
    {"cbam", build_cbam, "[r k]"},
    {"eca", build_eca, "[k]"},
    {"ram", build_ram, "[glimpses patch scales glimpse_hidden loc_hidden hidden classes lstm std samples seed]"},
    {NULL, NULL, NULL},
};
