/* check_main.c -- runs every suite tests/check_NAME.c registers, and prints
 * Check's summary line. `check_heed NAME...` runs only the named suites. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEED_SUITE(name) Suite *heed_suite_##name(void);
#include "suites.inc"
#undef HEED_SUITE

static const struct {
    const char *name;
    Suite *(*make)(void);
} suites[] = {
#define HEED_SUITE(name) {#name, heed_suite_##name},
#include "suites.inc"
#undef HEED_SUITE
};

static int wanted(const char *name, int argc, char **argv) {
    if (argc < 2) return 1;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], name) == 0) return 1;
    return 0;
}

int main(int argc, char **argv) {
    SRunner *runner = NULL;
    for (size_t i = 0; i < sizeof suites / sizeof suites[0]; i++) {
        if (!wanted(suites[i].name, argc, argv)) continue;
        if (!runner)
            runner = srunner_create(suites[i].make());
        else
            srunner_add_suite(runner, suites[i].make());
    }
    if (!runner) {
        fprintf(stderr, "check_heed: no suite matches\n");
        return 2;
    }
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
