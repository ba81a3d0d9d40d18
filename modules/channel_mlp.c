/* channel_mlp.c -- SE's and CBAM's channel attention MLP, on the core
 * primitives.
 *
 * forward:  h_i = fc1(p_i); ha_i = act(h_i); a = sum_i fc2(ha_i);
 *           e = gate(a)
 * backward: da = de * gate'(a); for each branch (d fc2 output = da, as a
 *           is their sum): dha_i = fc2^T da; dh_i = dha_i act'(h_i);
 *           dp_i = fc1^T dh_i, plus fc1/fc2 parameter grads, which add up
 *           over the branches because the weights are shared.
 */
#include "channel_mlp.h"

#include <stdlib.h>
#include <string.h>

#include "elementwise.h"

heed_status heed_channel_mlp_check(const char *type, const char *name, const int in[3], int r,
                                   const char *child) {
    const size_t max = HEED_LAYER_NAME_MAX, len = strlen(name);
    if (len + 1 + strlen(child) > max)
        return heed_fail(HEED_ERR_ARG,
                         "%s %s: the name has %zu characters, at most %zu fit (its layer %s.%s "
                         "must fit a layer's %zu)",
                         type, name, len, max - 1 - strlen(child), name, child, max);
    if (in[0] < 1 || in[1] < 1 || in[2] < 1)
        return heed_fail(HEED_ERR_ARG, "%s %s: input shape (%d, %d, %d) has a dimension < 1", type,
                         name, in[0], in[1], in[2]);
    if (r != 0 && (r < 1 || in[0] / r < 1))
        return heed_fail(HEED_ERR_ARG, "%s %s: reduction r=%d leaves no hidden units for %d channels",
                         type, name, r, in[0]);
    return HEED_OK;
}

heed_act_kind heed_gate_act(heed_gate gate) {
    return gate == HEED_GATE_HARDSIGMOID ? HEED_ACT_HARDSIGMOID : HEED_ACT_SIGMOID;
}

heed_status heed_channel_mlp_new(heed_channel_mlp *m, int c, int hidden, int branches, heed_params *p,
                                 const char *name) {
    *m = (heed_channel_mlp){.branches = branches, .act = HEED_ACT_RELU, .gate = HEED_GATE_SIGMOID};
    const int registered = p->count;
    char sub[96];
    heed_status st = heed_linear_new(&m->fc1, &(heed_linear_cfg){.in = c, .out = hidden},
                                     (int[3]){c, 1, 1}, p, heed_layer_join_name(sub, sizeof sub, name, "fc1"));
    if (st == HEED_OK)
        st = heed_linear_new(&m->fc2, &(heed_linear_cfg){.in = hidden, .out = c}, (int[3]){hidden, 1, 1},
                             p, heed_layer_join_name(sub, sizeof sub, name, "fc2"));
    if (st != HEED_OK) {
        /* fc1's entries would point into the layer freed here. */
        heed_params_truncate(p, registered);
        heed_channel_mlp_free(m);
    }
    return st;
}

heed_status heed_channel_mlp_forward(heed_channel_mlp *m, const heed_tensor *pooled) {
    const int two = m->branches == 2;
    for (int i = 0; i < m->branches; i++) {
        HEED_TRY(heed_linear_forward(m->fc1, &pooled[i], &m->hidden[i]));
        HEED_TRY(heed_act_forward(m->act, 0, &m->hidden[i], &m->hidden_act[i]));
        HEED_TRY(heed_linear_forward(m->fc2, &m->hidden_act[i], two ? &m->logits[i] : &m->a));
    }
    if (two) HEED_TRY(heed_add_forward(&m->logits[0], &m->logits[1], &m->a));
    return heed_act_forward(heed_gate_act(m->gate), 0, &m->a, &m->e);
}

heed_status heed_channel_mlp_backward(heed_channel_mlp *m, const heed_tensor *pooled,
                                      const heed_tensor *de, heed_tensor *dpooled) {
    HEED_TRY(heed_tensor_zeros_like(&m->da, &m->a));
    HEED_TRY(heed_act_backward(heed_gate_act(m->gate), 0, &m->a, &m->e, de, &m->da));
    for (int i = 0; i < m->branches; i++) {
        HEED_TRY(heed_tensor_zeros_like(&m->dhidden_act, &m->hidden_act[i]));
        HEED_TRY(heed_linear_backward(m->fc2, &m->hidden_act[i], &m->da, &m->dhidden_act));
        HEED_TRY(heed_tensor_zeros_like(&m->dhidden, &m->hidden[i]));
        HEED_TRY(heed_act_backward(m->act, 0, &m->hidden[i], &m->hidden_act[i], &m->dhidden_act,
                                   &m->dhidden));
        if (dpooled) HEED_TRY(heed_tensor_zeros_like(&dpooled[i], &pooled[i]));
        HEED_TRY(heed_linear_backward(m->fc1, &pooled[i], &m->dhidden, dpooled ? &dpooled[i] : NULL));
    }
    return HEED_OK;
}

void heed_channel_mlp_free(heed_channel_mlp *m) {
    if (m->fc1) heed_layer_free(&m->fc1->base);
    if (m->fc2) heed_layer_free(&m->fc2->base);
    m->fc1 = m->fc2 = NULL;
    heed_tensor *ts[] = {&m->hidden[0], &m->hidden[1], &m->hidden_act[0], &m->hidden_act[1],
                         &m->logits[0], &m->logits[1], &m->a, &m->e, &m->dhidden,
                         &m->dhidden_act, &m->da};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) heed_tensor_free(ts[i]);
}
