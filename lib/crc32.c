/* crc32.c -- the CRC-32 that checks a model file's chunks (model.h): the
 * IEEE 802.3 checksum of zlib's crc32() and PNG, reflected polynomial
 * 0xEDB88320, all ones in and out. Computed here so that models are read
 * and written without zlib (a MINIMAL=1 build links no codec or compression
 * library), over any size_t length (zlib's takes 32-bit lengths).
 *
 * Eight bytes a step through eight tables ("slicing by 8"): table k gives
 * the effect of a byte followed by k zero bytes, so the eight lookups of a
 * step are independent. The tables are made once, on first use. */
#include "crc32_impl.h"

#include <pthread.h>

static uint32_t table[8][256];
static pthread_once_t tables_made = PTHREAD_ONCE_INIT;

static void make_tables(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int bit = 0; bit < 8; bit++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        table[0][i] = c;
    }
    for (int k = 1; k < 8; k++)
        for (int i = 0; i < 256; i++)
            table[k][i] = (table[k - 1][i] >> 8) ^ table[0][table[k - 1][i] & 0xFF];
}

/* The bytes p[0..3] as a little-endian number, whatever the machine's order. */
static uint32_t le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint32_t heed_crc32(const void *data, size_t size) {
    pthread_once(&tables_made, make_tables);
    const unsigned char *p = data;
    uint32_t crc = 0xFFFFFFFFu;
    for (; size >= 8; size -= 8, p += 8) {
        const uint32_t a = crc ^ le32(p), b = le32(p + 4);
        crc = table[7][a & 0xFF] ^ table[6][(a >> 8) & 0xFF] ^ table[5][(a >> 16) & 0xFF] ^
              table[4][a >> 24] ^ table[3][b & 0xFF] ^ table[2][(b >> 8) & 0xFF] ^
              table[1][(b >> 16) & 0xFF] ^ table[0][b >> 24];
    }
    for (; size; size--, p++) crc = table[0][(crc ^ *p) & 0xFF] ^ (crc >> 8);
    return ~crc;
}
