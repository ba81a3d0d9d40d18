/* modules.c -- the attention modules' entries in the network-file parser. */
#include "cbam.h"
#include "net.h"
#include "se.h"

static heed_status build_se(heed_layer **out, heed_settings *s, const int in[3], heed_params *p,
                            const char *name) {
    heed_se_cfg c = {0};
    HEED_TRY(heed_settings_int(s, "r", 16, &c.r));
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

const heed_layer_type heed_module_layer_types[] = {
    {"se", build_se, "[r]"},
    {"cbam", build_cbam, "[r k]"},
    {NULL, NULL, NULL},
};
