/* main.c -- the `heed` command: dispatches to apps/cmd_NAME.c. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

#define HEED_COMMAND(name)                                                                     \
    int cmd_##name(int argc, char **argv);                                                     \
    extern const char cmd_##name##_summary[];
#include "commands.inc"
#undef HEED_COMMAND

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
#define HEED_COMMAND(name) {#name, cmd_##name, cmd_##name##_summary},
#include "commands.inc"
#undef HEED_COMMAND
};

static void usage(FILE *f) {
    fprintf(f, "usage: heed COMMAND [OPTIONS]   (heed COMMAND --help for its options)\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "  %-10s %s\n\n--version prints the version alone.\n", "help [CMD]",
            "this list, or CMD's options (as heed CMD --help)");
}

/* The index in commands of the command called name, or -1. */
static int find_command(const char *name) {
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(name, commands[i].name)) return (int)i;
    return -1;
}

/* rc, or 1 after saying so when what went to stdout could not all be
 * written (a full disk under `heed eval --json > results.json`). */
static int output_written(const char *command, int rc) {
    const int err = fflush(stdout) != 0 ? errno : ferror(stdout) ? EIO : 0;
    if (!err) return rc;
    fprintf(stderr, "heed%s%s: cannot write the output: %s\n", command ? " " : "", command ? command : "",
            strerror(err));
    return rc ? rc : 1;
}

static int run(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "help") && argc > 2 && strcmp(argv[2], "help")) {
        /* heed help CMD: that command's --help */
        char *help_argv[] = {argv[2], "--help", NULL};
        const int c = find_command(argv[2]);
        if (c >= 0) return commands[c].run(2, help_argv);
        fprintf(stderr, "heed: unknown command '%s' (heed --help lists them)\n", argv[2]);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("heed %s\n", HEED_VERSION);
        return 0;
    }
    const int c = find_command(argv[1]);
    if (c >= 0) return commands[c].run(argc - 1, argv + 1);
    fprintf(stderr, "heed: unknown command '%s' (heed --help lists them)\n", argv[1]);
    return 2;
}

int main(int argc, char **argv) {
    const int rc = run(argc, argv);
    return output_written(argc > 1 && find_command(argv[1]) >= 0 ? argv[1] : NULL, rc);
}
