/* cli.c -- see cli.h. */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

#include "error.h"
#include "file_impl.h"
#include "text_impl.h"

#ifdef _OPENMP
#include <omp.h>
#endif

static void print_help(const cli_spec *spec) {
    printf("usage: heed %s %s\n\n%s\n", spec->command, spec->usage, spec->about);
    if (spec->opts && spec->opts[0].name) printf("\noptions:\n");
    for (const cli_opt *o = spec->opts; o && o->name; o++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", o->name, o->metavar ? " " : "",
                 o->metavar ? o->metavar : "");
        printf("  %-22s %s", left, o->help);
        if (o->choices) printf(" (%s)", o->choices);
        switch (o->kind) {
        case CLI_INT:
            printf(" [%d]", *(int *)o->dest);
            break;
        case CLI_FLOAT:
            printf(" [%g]", *(float *)o->dest);
            break;
        case CLI_STRING:
            if (*(const char **)o->dest) printf(" [%s]", *(const char **)o->dest);
            break;
        case CLI_FLAG:
            break;
        }
        printf("\n");
    }
    printf("  %-22s %s\n", "--help", "show this help");
}

static int choice_ok(const char *choices, const char *value) {
    size_t n = strlen(value);
    for (const char *p = choices; *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && strncmp(p, value, n) == 0) return 1;
        if (!bar) break;
        p = bar + 1;
    }
    return 0;
}

static int set_value(const cli_spec *spec, const cli_opt *o, const char *value) {
    char *end;
    errno = 0;
    switch (o->kind) {
    case CLI_INT: {
        long v = strtol(value, &end, 10);
        if (*end || end == value)
            return cli_error(spec->command, 2, "--%s wants a whole number, got '%s'", o->name, value);
        if (errno || v < -2147483647L || v > 2147483647L)
            return cli_error(spec->command, 2, "--%s wants a whole number from -2147483647 to 2147483647, "
                             "got '%s'", o->name, value);
        *(int *)o->dest = (int)v;
        return -1;
    }
    case CLI_FLOAT: {
        float v = strtof(value, &end);
        if (*end || end == value)
            return cli_error(spec->command, 2, "--%s wants a number, got '%s'", o->name, value);
        if (errno) /* strtof's ERANGE: beyond a float, or too small to be one but 0 */
            return cli_error(spec->command, 2, "--%s wants a number a float holds (1e-38 to 3.4e38 in size, "
                             "or 0), got '%s'", o->name, value);
        *(float *)o->dest = v;
        return -1;
    }
    case CLI_STRING:
        if (o->choices && !choice_ok(o->choices, value))
            return cli_error(spec->command, 2, "--%s must be one of %s, got '%s'", o->name,
                             o->choices, value);
        *(const char **)o->dest = value;
        return -1;
    case CLI_FLAG:
        break;
    }
    return -1;
}

int cli_given(const cli_opt *opts, const int *given, const char *name) {
    for (int i = 0; opts[i].name; i++)
        if (!strcmp(opts[i].name, name)) return given[i];
    return 0;
}

int cli_parse(const cli_spec *spec, int argc, char **argv, char ***args, int *nargs) {
    /* Positionals are compacted to the front of argv[1..]; argv is ours. */
    int npos = 0, options_done = 0;
    char **pos = argv + 1;
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        if (options_done || a[0] != '-' || a[1] == '\0') {
            pos[npos++] = a;
            continue;
        }
        if (!strcmp(a, "--")) {
            options_done = 1;
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            print_help(spec);
            return 0;
        }
        if (a[1] != '-')
            return cli_error(spec->command, 2, "unknown option '%s' (try --help)", a);
        char name[64];
        const char *eq = strchr(a + 2, '=');
        size_t len = eq ? (size_t)(eq - (a + 2)) : strlen(a + 2);
        if (len >= sizeof name) return cli_error(spec->command, 2, "unknown option '%s'", a);
        memcpy(name, a + 2, len);
        name[len] = '\0';
        const cli_opt *o = spec->opts;
        while (o && o->name && strcmp(o->name, name)) o++;
        if (!o || !o->name)
            return cli_error(spec->command, 2, "unknown option '--%s' (try --help)", name);
        if (spec->given) spec->given[o - spec->opts] = 1;
        if (o->kind == CLI_FLAG) {
            if (eq) return cli_error(spec->command, 2, "--%s takes no value", name);
            *(int *)o->dest = 1;
            continue;
        }
        const char *value = eq ? eq + 1 : NULL;
        if (!value) {
            if (i + 1 >= argc) return cli_error(spec->command, 2, "--%s needs a value", name);
            value = argv[++i];
        }
        int rc = set_value(spec, o, value);
        if (rc >= 0) return rc;
    }
    *args = pos;
    *nargs = npos;
    return -1;
}

int cli_error(const char *command, int code, const char *fmt, ...) {
    va_list ap, again;
    va_start(ap, fmt);
    va_copy(again, ap);
    const int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *text = n >= 0 ? malloc((size_t)n + 1) : NULL;
    fprintf(stderr, "heed %s: ", command);
    if (text) {
        vsnprintf(text, (size_t)n + 1, fmt, again);
        /* One line whatever a name in it holds: a file name's newline or
         * tab shown as ?, as ls shows it. */
        fputs(heed_mask_controls(text), stderr);
        free(text);
    } else {
        vfprintf(stderr, fmt, again);
    }
    va_end(again);
    fputc('\n', stderr);
    return code;
}

int cli_check_writable(const char *command, const char *path) {
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return cli_error(command, 1, "cannot write %s: it is a directory", path);
    char probe[4096]; /* the writers' own temporary name */
    if (heed_atomic_tmp_name(probe, sizeof probe, path) != 0)
        return cli_error(command, 1, "cannot write %s: path too long", path);
    /* O_EXCL, as the writers open it: never through a link planted there. */
    const int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0) return cli_error(command, 1, "cannot write %s: %s", path, strerror(errno));
    close(fd);
    remove(probe);
    return -1;
}

int cli_threads(const char *command, int *threads, int zero_is_default) {
    if (*threads == 0 && zero_is_default) return -1;
    if (*threads < 1 || *threads > CLI_MAX_THREADS)
        return cli_error(command, 2, "--threads must be %s1 .. %d, not %d",
                         zero_is_default ? "0 (every core) or " : "", CLI_MAX_THREADS, *threads);
#ifdef _OPENMP
    omp_set_num_threads(*threads);
#else
    if (*threads > 1)
        fprintf(stderr, "heed %s: built without OpenMP (make OPENMP=0): one thread, not %d\n",
                command, *threads);
    *threads = 1;
#endif
    return -1;
}

/* Bytes in the valid UTF-8 sequence at p (1 for ASCII), 0 if none starts
 * there: no overlong forms, surrogates or code points past U+10FFFF. */
static int utf8_length(const unsigned char *p) {
    if (p[0] < 0x80) return 1;
    int n;
    unsigned lo = 0x80, hi = 0xbf; /* the second byte's range */
    if (p[0] >= 0xc2 && p[0] <= 0xdf)
        n = 2;
    else if (p[0] >= 0xe0 && p[0] <= 0xef)
        n = 3, lo = p[0] == 0xe0 ? 0xa0 : 0x80, hi = p[0] == 0xed ? 0x9f : 0xbf;
    else if (p[0] >= 0xf0 && p[0] <= 0xf4)
        n = 4, lo = p[0] == 0xf0 ? 0x90 : 0x80, hi = p[0] == 0xf4 ? 0x8f : 0xbf;
    else
        return 0;
    if (p[1] < lo || p[1] > hi) return 0;
    for (int i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xbf) return 0;
    return n;
}

void cli_json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        const int n = utf8_length(p);
        if (n == 0)
            fputs("\\ufffd", f), p++;
        else if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p), p++;
        else if (heed_control_char((char)*p))
            fprintf(f, "\\u%04x", *p), p++;
        else
            fwrite(p, 1, (size_t)n, f), p += n;
    }
    fputc('"', f);
}

int cli_lib_error(const char *command) { return cli_error(command, 1, "%s", heed_last_error()); }

double cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void cli_progress_start(cli_progress *p, const char *label, long total) {
    *p = (cli_progress){.label = label, .total = total > 0 ? total : 1, .start = cli_now()};
    const char *force = getenv("HEED_PROGRESS");
    p->enabled = force ? atoi(force) != 0 : isatty(STDERR_FILENO);
}

static void draw(cli_progress *p, long done, const char *extra, int final) {
    double t = cli_now(), elapsed = t - p->start;
    double frac = (double)done / p->total;
    if (frac > 1) frac = 1;
    char bar[31];
    int fill = (int)(frac * 30);
    for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
    bar[30] = '\0';
    double left = frac > 0 ? elapsed * (1 - frac) / frac : 0;
    fprintf(stderr, "\r%s [%s] %3.0f%% %s %s %.0fs", p->label, bar, frac * 100, extra ? extra : "",
            final ? "took" : "left", final ? elapsed : left);
    fprintf(stderr, final ? "\n" : "\033[K");
    fflush(stderr);
    p->last_draw = t;
}

void cli_progress_update(cli_progress *p, long done, const char *extra) {
    if (!p->enabled || cli_now() - p->last_draw < 0.1) return;
    draw(p, done, extra, 0);
}

void cli_progress_end(cli_progress *p, const char *extra) {
    if (p->enabled) draw(p, p->total, extra, 1);
}

void cli_progress_abandon(cli_progress *p) {
    if (p->enabled && p->last_draw > 0) fputc('\n', stderr);
}

void cli_progress_count(void *ctx, int done, int total) {
    cli_progress *p = ctx;
    p->total = total > 0 ? total : 1;
    if (done >= total) {
        if (p->last_draw > 0) cli_progress_end(p, NULL);
        p->last_draw = 0; /* ended: a later abandon has no line to end */
    } else if (cli_now() - p->start >= 1.0) {
        cli_progress_update(p, done, NULL);
    }
}

static volatile sig_atomic_t stop_signal, stopped_by_int, stopped_by_term;
/* heed_write_atomic's temporary file while cli_stop_saving says a save
 * runs (saving set once the name is whole). */
static char saving_tmp[4200];
static volatile sig_atomic_t saving;

/* The first signal of a kind asks to stop; a second ends the run as the
 * signal's default action does, first removing a save's temporary file,
 * which it would leave half-written (or whole but never renamed) beside
 * the file it was to replace. */
static void on_stop(int sig) {
    volatile sig_atomic_t *before = sig == SIGINT ? &stopped_by_int : &stopped_by_term;
    if (!*before) {
        *before = 1;
        stop_signal = sig;
        return;
    }
    if (saving) unlink(saving_tmp);
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, NULL);
    raise(sig); /* delivered, and fatal, as the handler returns */
}

void cli_catch_stop(void) {
    const int sigs[] = {SIGINT, SIGTERM};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        struct sigaction old, sa = {.sa_handler = on_stop};
        if (sigaction(sigs[i], NULL, &old) != 0 || old.sa_handler == SIG_IGN) continue;
        sigemptyset(&sa.sa_mask);
        /* SA_RESTART: a read of the data interrupted goes on, not fails. */
        sa.sa_flags = SA_RESTART;
        sigaction(sigs[i], &sa, NULL);
    }
}

void cli_stop_saving(const char *path) {
    saving = 0;
    atomic_signal_fence(memory_order_seq_cst); /* the handler sees the name whole, or not at all */
    if (path && heed_atomic_tmp_name(saving_tmp, sizeof saving_tmp, path) == 0) {
        atomic_signal_fence(memory_order_seq_cst);
        saving = 1;
    }
}

int cli_stop_signal(void) { return stop_signal; }

int cli_make_dirs(const char *command, const char *dir) {
    /* The loop below starts at path[1]: an empty name has nothing there. */
    if (!dir[0]) return cli_error(command, 1, "cannot create directory '': the name is empty");
    char path[4096];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path)
        return cli_error(command, 1, "directory name too long: %.60s...", dir);
    /* Each prefix ending at a '/', then the whole path; existing ones are fine. */
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p != '\0') continue;
        char end = *p;
        *p = '\0';
        if (mkdir(path, 0777) != 0 && errno != EEXIST)
            return cli_error(command, 1, "cannot create directory %s: %s", path, strerror(errno));
        if (end == '\0') break;
        *p = end;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return cli_error(command, 1, "%s exists and is not a directory", dir);
    return 0;
}
