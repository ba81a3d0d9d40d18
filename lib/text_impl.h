/* text_impl.h -- internal (not installed): text that reaches a terminal,
 * a JSON line or a model's metadata, one line of it. */
#ifndef HEED_TEXT_IMPL_H
#define HEED_TEXT_IMPL_H

#include <stdio.h>

/* Whether byte c is a control character (C0 or DEL): text that reaches
 * a terminal or a JSON line must not carry one. */
static inline int heed_control_char(char c) {
    return (unsigned char)c < 0x20 || c == 0x7f;
}

/* Each control character of s as '?', as ls shows one: a name or a
 * command line kept to one line. Returns s. */
static inline char *heed_mask_controls(char *s) {
    for (char *c = s; *c; c++)
        if (heed_control_char(*c)) *c = '?';
    return s;
}

/* v copied into out (size bytes, cut to fit), its control characters
 * masked (heed_mask_controls). Returns out. */
static inline const char *heed_one_line(const char *v, char *out, size_t size) {
    snprintf(out, size, "%s", v);
    return heed_mask_controls(out);
}

#endif
