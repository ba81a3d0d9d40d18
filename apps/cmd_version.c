/* cmd_version.c -- `heed version`: the library version and the kernel in use. */
#include <stdio.h>

#include "cli.h"
#include "gemm.h"

const char cmd_version_summary[] = "print the version and the matrix-product kernel in use";

int cmd_version(int argc, char **argv) {
    int json = 0;
    const cli_opt opts[] = {{"json", CLI_FLAG, &json, NULL, "print JSON", NULL}, {0}};
    const cli_spec spec = {"version", "[--json]", "Print heed's version and the CPU kernel it picked.",
                           opts};
    char **args;
    int nargs;
    int rc = cli_parse(&spec, argc, argv, &args, &nargs);
    if (rc >= 0) return rc;
    if (nargs) return cli_error("version", 2, "takes no arguments");
    if (json)
        printf("{\"version\": \"%s\", \"gemm_kernel\": \"%s\"}\n", HEED_VERSION, heed_gemm_kernel_name());
    else
        printf("heed %s (gemm kernel: %s)\n", HEED_VERSION, heed_gemm_kernel_name());
    return 0;
}
