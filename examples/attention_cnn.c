/* attention_cnn.c -- build a CNN in code, put SE attention after a block,
 * train it on Fashion-MNIST for a few steps, and read where it attends.
 * `make check` compiles and runs it (tests/check_cli.c). */
#include <heed/heed.h>
#include <stdio.h>

#define TRY(x) do { if ((x) != HEED_OK) { fprintf(stderr, "%s\n", heed_last_error()); return 1; } } while (0)

int main(void) {
    heed_params params = {0};
    heed_seq *net;
    heed_conv2d *conv;
    heed_batchnorm *bn;
    heed_activation *relu;
    heed_se *se;
    heed_global_pool *gap;
    heed_linear *fc;
    int shape[3];
    /* conv(3, 1->16) bn relu, then SE attention, then gap and a classifier */
    TRY(heed_seq_new(&net, (int[3]){1, 28, 28}, ""));
    TRY(heed_conv2d_new(&conv, &(heed_conv2d_cfg){.in_c = 1, .out_c = 16, .k = 3, .stride = 2, .pad = 1},
                        heed_seq_out_shape(net, shape), &params, "conv"));
    TRY(heed_seq_append(net, &conv->base));
    TRY(heed_batchnorm_new(&bn, &(heed_batchnorm_cfg){.c = 16}, heed_seq_out_shape(net, shape), &params, "bn"));
    TRY(heed_seq_append(net, &bn->base));
    TRY(heed_activation_new(&relu, &(heed_activation_cfg){.kind = HEED_ACT_RELU},
                            heed_seq_out_shape(net, shape), &params, "relu"));
    TRY(heed_seq_append(net, &relu->base));
    TRY(heed_se_new(&se, &(heed_se_cfg){.r = 4}, heed_seq_out_shape(net, shape), &params, "se"));
    TRY(heed_seq_append(net, &se->base));
    TRY(heed_global_pool_new(&gap, HEED_POOL_AVG, heed_seq_out_shape(net, shape), "gap"));
    TRY(heed_seq_append(net, &gap->base));
    TRY(heed_linear_new(&fc, &(heed_linear_cfg){.in = 16, .out = 10}, heed_seq_out_shape(net, shape),
                        &params, "fc"));
    TRY(heed_seq_append(net, &fc->base));
    TRY(heed_params_alloc(&params, 42));

    heed_dataset data;
    TRY(heed_fmnist_load(&data, NULL, 1, 2048));
    heed_optim opt;
    TRY(heed_optim_init(&opt, &(heed_optim_cfg){.kind = HEED_OPTIM_ADAMW, .lr = 2e-2f}, &params));
    heed_tensor x = {0}, logits = {0}, dlogits = {0};
    int idx[64], labels[64];
    heed_layer_set_training(&net->base, 1);
    for (int step = 0; step < 96; step++) {
        for (int i = 0; i < 64; i++) idx[i] = (step * 64 + i) % data.count;
        TRY(heed_dataset_batch(&data, idx, 64, NULL, NULL, &x, labels));
        heed_params_zero_grad(&params);
        TRY(heed_layer_forward(&net->base, &x, &logits));
        TRY(heed_tensor_ensure(&dlogits, 64, 10, 1, 1));
        heed_tensor_zero(&dlogits);
        double loss;
        TRY(heed_softmax_cross_entropy(&logits, labels, &loss, NULL, &dlogits));
        TRY(heed_layer_backward(&net->base, &x, &logits, &dlogits, NULL));
        heed_optim_step(&opt, 2e-2f);
        if (step % 32 == 0 || step == 95) printf("step %2d loss %.3f\n", step, loss);
    }
    /* SE's channel weights for the first image of the last batch */
    const heed_tensor *e = heed_se_weights(se);
    printf("channel attention:");
    for (int c = 0; c < e->c; c++) printf(" %.2f", e->data[c]);
    printf("\n");
    heed_tensor_free(&x), heed_tensor_free(&logits), heed_tensor_free(&dlogits);
    heed_optim_free(&opt);
    heed_dataset_free(&data);
    heed_layer_free(&net->base);
    heed_params_free(&params);
    return 0;
}
