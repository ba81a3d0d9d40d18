/* cli.h -- option parsing, help text, errors and progress bars shared by
 * the `heed` subcommands.
 *
 *   int epochs = 10; const char *net = NULL; int json = 0;
 *   const cli_opt opts[] = {
 *       {"net", CLI_STRING, &net, "FILE", "network description (required)"},
 *       {"epochs", CLI_INT, &epochs, "N", "training epochs"},
 *       {"json", CLI_FLAG, &json, NULL, "print JSON"},
 *       {0}};
 *   const cli_spec spec = {"train", "--net FILE --out MODEL [options]",
 *                          "Train a network.", opts};
 *   char **args; int nargs;
 *   int rc = cli_parse(&spec, argc, argv, &args, &nargs);
 *   if (rc >= 0) return rc;           // --help printed (0) or usage error (2)
 *
 * Errors are one line on stderr, "heed CMD: what went wrong"; usage errors
 * exit 2, other failures 1.
 */
#ifndef HEED_CLI_H
#define HEED_CLI_H

#include <stdio.h>

#define HEED_VERSION "0.1.0"

typedef enum { CLI_FLAG, CLI_INT, CLI_FLOAT, CLI_STRING } cli_kind;

typedef struct cli_opt {
    const char *name; /* long name without dashes; NULL ends the table */
    cli_kind kind;
    void *dest;          /* int* (FLAG, INT), float* (FLOAT), const char** (STRING) */
    const char *metavar; /* shown in help: "N", "FILE"; NULL for flags */
    const char *help;    /* one line; the default is appended automatically */
    const char *choices; /* "sgd|adamw": STRING values must be one of these */
} cli_opt;

typedef struct cli_spec {
    const char *command; /* "train" */
    const char *usage;   /* after "heed train " */
    const char *about;   /* a paragraph shown by --help */
    const cli_opt *opts;
    int *given; /* optional: cli_parse sets given[i] = 1 for each opts[i] on the command line */
} cli_spec;

/* Parses argv[1..] (argv[0] is the command name). Options may be given as
 * --name VALUE or --name=VALUE; "--" ends options. Positional arguments are
 * returned in *args (pointing into argv), *nargs of them. Returns -1 to go
 * on, 0 after printing --help, 2 after printing a usage error. */
int cli_parse(const cli_spec *spec, int argc, char **argv, char ***args, int *nargs);

/* Whether option `name` was on the command line, by the given[] array
 * cli_parse filled for opts (a default and an explicit value look alike
 * otherwise). */
int cli_given(const cli_opt *opts, const int *given, const char *name);

/* Prints "heed CMD: <message>" on stderr and returns `code`. */
int cli_error(const char *command, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Creates directory `dir` and any missing parents (as mkdir -p). Returns 0,
 * or prints "heed CMD: cannot create directory ..." and returns 1. */
int cli_make_dirs(const char *command, const char *dir);

/* Whether a file can be written at `path` (its directory exists and takes
 * new files), tried with the temporary name the atomic writers use, so
 * that a long run learns it before it starts, not when it first saves.
 * Returns -1 to go on, or prints "heed CMD: cannot write PATH: reason"
 * and returns 1. */
int cli_check_writable(const char *command, const char *path);

/* --threads N, checked and applied: 1 .. CLI_MAX_THREADS, or 0 for
 * OpenMP's default (every core) where `zero_is_default`. Returns -1 to go
 * on, or prints a usage error and returns 2. The cap because libgomp gives
 * each thread a stack: 100000 of them crashed (a checkpoint's recipe can
 * carry the number too). In a build without OpenMP (make OPENMP=0) a
 * *threads over 1 becomes 1, with a note on stderr saying so. */
#define CLI_MAX_THREADS 1024
int cli_threads(const char *command, int *threads, int zero_is_default);

/* Writes s to f as a JSON string literal: quotes and backslashes escaped,
 * control characters as \u00XX, and each byte that is not part of valid
 * UTF-8 (a class name or path from a file) as U+FFFD, so that the line
 * always parses. */
void cli_json_string(FILE *f, const char *s);

/* Prints "heed CMD: <heed_last_error()>" and returns 1. */
int cli_lib_error(const char *command);

/* A progress bar on stderr, redrawn at most ~10 times a second, only when
 * stderr is a terminal unless forced; `extra` is free text such as
 * "loss 0.312 acc 91.2%". */
typedef struct cli_progress {
    const char *label;
    long total;
    double start, last_draw;
    int enabled;
} cli_progress;
void cli_progress_start(cli_progress *p, const char *label, long total);
void cli_progress_update(cli_progress *p, long done, const char *extra);
void cli_progress_end(cli_progress *p, const char *extra);
/* Ends a bar left part way (the line it was drawing), before a message. */
void cli_progress_abandon(cli_progress *p);
/* For counted work whose total is known only once it runs (a
 * dataset_progress's fn): ctx is a cli_progress started with total 0.
 * Nothing is drawn in the first second, so quick work stays quiet; the
 * bar ends when done reaches total. */
void cli_progress_count(void *ctx, int done, int total);

/* Catches SIGINT and SIGTERM, so that a long command can stop at a point
 * where its files are whole and say how to go on: cli_stop_signal() then
 * returns the signal's number (0 until one comes). A signal ignored when
 * the command started (a background job's SIGINT) stays ignored, and a
 * second one of the same kind acts as it would have (a stuck run still
 * dies on a second Ctrl-C). */
void cli_catch_stop(void);
int cli_stop_signal(void);
/* Around a heed_write_atomic of path (the model savers' writer) after
 * cli_catch_stop: cli_stop_saving(path) before it, cli_stop_saving(NULL)
 * after, so that a second signal ending the run during the save removes
 * the temporary file rather than leave it beside path. */
void cli_stop_saving(const char *path);

/* Monotonic seconds. */
double cli_now(void);

#endif
