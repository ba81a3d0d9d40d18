/* own_networks.c -- two threads, each running its own copy of a network.
 *
 * The ceiling for sharing one image between two cores: each OpenMP thread
 * loads the network file for itself and runs batch-1 forwards on its own
 * input (the layers' own loops run on that one thread: heed keeps nested
 * regions serial), so the two share no data. Prints each thread's
 * milliseconds per forward; compare with `heed bench --net FILE --threads 1`
 * alone and with two such processes at once. Measurement only (`make
 * check` builds it):
 *
 *   make build/bench/own_networks
 *   build/bench/own_networks NET_FILE [FORWARDS] [--lockstep]
 * --lockstep: the threads meet at a barrier before each forward.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "heed.h"
#include "omp_impl.h"

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: own_networks NET_FILE [FORWARDS] [--lockstep]\n");
        return 2;
    }
    const int forwards = argc > 2 && argv[2][0] != '-' ? atoi(argv[2]) : 500;
    const int lockstep = !strcmp(argv[argc - 1], "--lockstep");
    if (forwards < 1) {
        fprintf(stderr, "own_networks: FORWARDS must be a positive number, not '%s'\n", argv[2]);
        return 2;
    }
    double ms[2] = {0.0, 0.0};
    int failed = 0, team = 0;
#pragma omp parallel num_threads(2)
    {
        const int t = omp_get_thread_num();
#pragma omp master
        team = omp_get_num_threads();
        heed_net *net = NULL;
        heed_tensor x = {0}, y = {0};
        int ok = heed_net_load(&net, argv[1], 1) == HEED_OK &&
                 heed_tensor_alloc(&x, 1, net->in_c, net->in_h, net->in_w) == HEED_OK;
        if (!ok) {
#pragma omp critical
            {
                if (!failed) fprintf(stderr, "own_networks: %s\n", heed_last_error());
                failed = 1;
            }
        }
#pragma omp barrier
        if (!failed) {
            for (size_t i = 0; i < heed_tensor_count(&x); i++)
                x.data[i] = (float)((i * 7) % 13) / 13.0f - 0.5f;
            heed_net_set_training(net, 0);
            heed_net_set_frozen(net, 1);
            for (int r = 0; r < 20; r++) heed_net_forward(net, &x, &y); /* warm-up */
#pragma omp barrier
            const double t0 = omp_get_wtime();
            for (int r = 0; r < forwards; r++) {
                if (lockstep) {
#pragma omp barrier
                }
                heed_net_forward(net, &x, &y);
            }
            ms[t] = (omp_get_wtime() - t0) / forwards * 1e3;
        }
        heed_tensor_free(&x);
        heed_tensor_free(&y);
        heed_net_free(net);
    }
    if (failed) return 1;
    if (team != 2) {
        fprintf(stderr, "own_networks: got %d thread(s), needs 2 (OMP_THREAD_LIMIT?)\n", team);
        return 1;
    }
    printf("%s: %.3f and %.3f ms per forward%s\n", argv[1], ms[0], ms[1],
           lockstep ? " (in lockstep)" : "");
    return 0;
}
