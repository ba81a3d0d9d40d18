/* cmd_version.c -- `heed version`: the library version, the kernel in use, OpenMP or not. */
#include <stdio.h>

#include "cli.h"
#include "gemm.h"

const char cmd_version_summary[] = "print the version and the matrix-product kernel in use";

int cmd_version(int argc, char **argv) {
    int json = 0;
    const cli_opt opts[] = {{"json", CLI_FLAG, &json, NULL, "print JSON", NULL}, {0}};
    const cli_spec spec = {"version", "[--json]", "Print heed's version, the CPU kernel it picked and whether it runs OpenMP threads.",
                           opts, NULL};
    char **args;
    int nargs;
    int rc = cli_parse(&spec, argc, argv, &args, &nargs);
    if (rc >= 0) return rc;
    if (nargs) return cli_error("version", 2, "takes no arguments");
#ifdef _OPENMP
    const int openmp = 1;
#else
    const int openmp = 0; /* make OPENMP=0: one thread */
#endif
    if (json)
        printf("{\"version\": \"%s\", \"gemm_kernel\": \"%s\", \"openmp\": %s}\n", HEED_VERSION,
               heed_gemm_kernel_name(), openmp ? "true" : "false");
    else
        printf("heed %s (gemm kernel: %s, %s)\n", HEED_VERSION, heed_gemm_kernel_name(),
               openmp ? "OpenMP threads" : "no OpenMP: one thread");
    return 0;
}
