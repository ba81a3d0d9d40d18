/* crc32_impl.h -- internal (not installed): the CRC-32 of zlib's crc32()
 * (IEEE 802.3), for model files' chunks without zlib.
 *
 *   uint32_t c = heed_crc32(bytes, size);   // "123456789" -> 0xCBF43926
 */
#ifndef HEED_CRC32_IMPL_H
#define HEED_CRC32_IMPL_H

#include <stddef.h>
#include <stdint.h>

uint32_t heed_crc32(const void *data, size_t size);

#endif
