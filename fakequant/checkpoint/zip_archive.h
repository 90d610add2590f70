// A minimal ZIP reader for the archives torch.save writes (PyTorch >= 1.6).
//
// What PyTorch writes (through miniz, see docs/checkpoints.md): every entry STORED (method 0, no
// compression), its data aligned to 64 bytes by padding the local header's extra field, sizes and
// CRC-32 known in advance (no data descriptor), ZIP64 records when the archive or an entry passes
// 4 GiB. So this reader supports exactly that: the end-of-central-directory record (and its ZIP64
// twin), the central directory, local headers, STORED data. Anything else is refused: DEFLATE and
// other methods, encryption, multi-disk archives.
//
// Reading checks the local header against the central directory and the data against its CRC-32.
// Every problem throws qv::InputError naming the file, the entry (or record) and what was expected.
// The file stays open for the archive's lifetime; entries are read on demand, one at a time, so a
// checkpoint of several hundred MB never has to sit in memory whole.
#pragma once

#include <cstdint>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

namespace qv::checkpoint {

struct ZipEntry {
  std::string name;
  uint16_t method = 0;         // 0 = STORED, 8 = DEFLATE, ...
  uint16_t flags = 0;          // general-purpose bit flags
  uint32_t crc32 = 0;
  uint64_t compressed_size = 0;
  uint64_t size = 0;           // uncompressed
  uint64_t local_header_offset = 0;
};

class ZipArchive {
 public:
  // Opens `path` and reads its central directory. Throws InputError if the file cannot be opened or
  // is not a well-formed ZIP archive.
  explicit ZipArchive(std::string path);

  const std::string& path() const { return path_; }
  // In central-directory order (for torch.save: data.pkl first, then the storages, then version).
  const std::vector<ZipEntry>& entries() const { return entries_; }
  // nullptr when absent.
  const ZipEntry* find(std::string_view name) const;

  // The entry's bytes, after checking method, local header and CRC-32. Throws InputError naming the
  // entry when it is missing, compressed, inconsistent or corrupt.
  std::string read(std::string_view name);
  std::string read(const ZipEntry& entry);

 private:
  void read_at(uint64_t offset, void* out, uint64_t size, const std::string& where);
  void read_central_directory();

  std::string path_;
  std::ifstream in_;
  uint64_t file_size_ = 0;
  std::vector<ZipEntry> entries_;
};

}  // namespace qv::checkpoint
