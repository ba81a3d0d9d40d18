/* netfile_impl.h -- the network parser's entry for model files (not
 * installed).
 *
 * heed_net_parse_bounded is heed_net_parse refusing, before it allocates
 * them, networks with more than max_params parameter floats: a model file
 * says how many it holds, and a corrupt one must not make heed allocate
 * gigabytes it will then find missing. */
#ifndef HEED_NETFILE_IMPL_H
#define HEED_NETFILE_IMPL_H

#include <stddef.h>

#include "net.h"

heed_status heed_net_parse_bounded(heed_net **out, const char *text, const char *origin,
                                   uint64_t seed, size_t max_params);

/* heed_net_parse without allocating or initialising the parameters
 * (heed_net_describe). */
heed_status heed_net_parse_layout(heed_net **out, const char *text, const char *origin);

/* HEED_ERR_FORMAT, naming origin and the line, if the n bytes of text
 * (a network file, or a model file's network or metadata chunk) hold a NUL:
 * read as a C string, the text would end there and the rest go unread. */
heed_status heed_text_check(const char *text, size_t n, const char *origin);

#endif
