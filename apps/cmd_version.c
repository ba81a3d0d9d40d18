/* cmd_version.c -- `heed version`: the library version, the kernel in use, OpenMP or not, and the image formats of the build. */
#include <stdio.h>

#include "cli.h"
#include "gemm.h"
#include "image.h"

const char cmd_version_summary[] = "print the version and the matrix-product kernel in use";

int cmd_version(int argc, char **argv) {
    int json = 0;
    const cli_opt opts[] = {{"json", CLI_FLAG, &json, NULL, "print JSON", NULL}, {0}};
    const cli_spec spec = {"version", "[--json]", "Print heed's version, the CPU kernel it picked, whether it runs OpenMP threads and the\nimage formats it reads and writes (none in a MINIMAL=1 build).\nJSON: {\"version\", \"gemm_kernel\", \"openmp\", \"image_formats\"}.",
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
    const char *formats = heed_image_formats();
    if (json)
        printf("{\"version\": \"%s\", \"gemm_kernel\": \"%s\", \"openmp\": %s, \"image_formats\": \"%s\"}\n",
               HEED_VERSION, heed_gemm_kernel_name(), openmp ? "true" : "false", formats);
    else
        printf("heed %s (gemm kernel: %s, %s, %s%s)\n", HEED_VERSION, heed_gemm_kernel_name(),
               openmp ? "OpenMP threads" : "no OpenMP: one thread", formats[0] ? "images: " : "",
               formats[0] ? formats : "no image codecs: MINIMAL=1");
    return 0;
}
