// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320; the zlib/PNG/ZIP checksum).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace qv {

// crc32("123456789") == 0xCBF43926. Pass a previous result as `crc` to continue a running checksum.
uint32_t crc32(const void* data, size_t size, uint32_t crc = 0);
inline uint32_t crc32(std::string_view s, uint32_t crc = 0) { return crc32(s.data(), s.size(), crc); }
// Of the values as little-endian int64 words: identifies a tensor's contents whatever its storage.
uint32_t crc32_of_values(const std::vector<int64_t>& values);

}  // namespace qv
