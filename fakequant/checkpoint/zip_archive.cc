#include "fakequant/checkpoint/zip_archive.h"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <unordered_set>

#include "ir/crc32.h"
#include "ir/error.h"

namespace qv::checkpoint {

namespace {

constexpr uint32_t kLocalHeaderSig = 0x04034b50;
constexpr uint32_t kCentralHeaderSig = 0x02014b50;
constexpr uint32_t kEocdSig = 0x06054b50;
constexpr uint32_t kZip64EocdSig = 0x06064b50;
constexpr uint32_t kZip64LocatorSig = 0x07064b50;
constexpr size_t kLocalHeaderSize = 30;
constexpr size_t kCentralHeaderSize = 46;
constexpr size_t kEocdSize = 22;
constexpr size_t kZip64LocatorSize = 20;
constexpr size_t kZip64EocdSize = 56;
constexpr uint16_t kZip64ExtraId = 0x0001;

// Little-endian field readers over a byte buffer whose size the caller has checked.
uint16_t u16(const unsigned char* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t u32(const unsigned char* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
         (static_cast<uint32_t>(p[3]) << 24);
}
uint64_t u64(const unsigned char* p) { return u32(p) | (static_cast<uint64_t>(u32(p + 4)) << 32); }

std::string hex32(uint32_t v) {
  char buf[11];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

std::string method_name(uint16_t method) {
  switch (method) {
    case 0: return "STORED";
    case 8: return "DEFLATE";
    case 9: return "DEFLATE64";
    case 12: return "BZIP2";
    case 14: return "LZMA";
    case 93: return "ZSTD";
    default: return "method " + std::to_string(method);
  }
}

std::string quoted_entry(std::string_view name) { return "entry '" + std::string(name) + "'"; }

}  // namespace

ZipArchive::ZipArchive(std::string path) : path_(std::move(path)) {
  in_.open(path_, std::ios::binary);
  if (!in_) throw InputError(path_, "", "cannot open file");
  in_.seekg(0, std::ios::end);
  const std::streamoff end = in_.tellg();
  if (end < 0) throw InputError(path_, "", "cannot determine the file size");
  file_size_ = static_cast<uint64_t>(end);
  read_central_directory();
}

void ZipArchive::read_at(uint64_t offset, void* out, uint64_t size, const std::string& where) {
  if (offset > file_size_ || size > file_size_ - offset)
    throw InputError(path_, where,
                     "needs bytes " + std::to_string(offset) + ".." + std::to_string(offset + size) +
                         " but the file has only " + std::to_string(file_size_) + " bytes (truncated?)");
  in_.clear();
  in_.seekg(static_cast<std::streamoff>(offset));
  in_.read(static_cast<char*>(out), static_cast<std::streamsize>(size));
  if (!in_ || static_cast<uint64_t>(in_.gcount()) != size)
    throw InputError(path_, where, "read error at byte " + std::to_string(offset));
}

void ZipArchive::read_central_directory() {
  const std::string not_zip = "not a ZIP archive (no end-of-central-directory record); expected a torch.save file "
                              "written by PyTorch >= 1.6";
  // The EOCD record is the last 22 bytes unless a comment (at most 65535 bytes) follows it.
  const uint64_t tail_size = std::min<uint64_t>(file_size_, kEocdSize + 0xFFFF);
  std::vector<unsigned char> tail(tail_size);
  read_at(file_size_ - tail_size, tail.data(), tail_size, "end-of-central-directory record");
  int64_t found = -1;
  for (int64_t i = static_cast<int64_t>(tail_size) - static_cast<int64_t>(kEocdSize); i >= 0; --i) {
    const unsigned char* p = tail.data() + i;
    if (u32(p) == kEocdSig && static_cast<uint64_t>(i) + kEocdSize + u16(p + 20) <= tail_size) {
      found = i;
      break;
    }
  }
  if (found < 0) {
    unsigned char magic[2] = {0, 0};
    if (file_size_ >= 2) read_at(0, magic, 2, "file header");
    if (magic[0] == 0x80 && magic[1] >= 2 && magic[1] <= 5)
      throw InputError(path_, "",
                       "a legacy (pre-1.6, non-ZIP) torch.save pickle file, which is not supported; re-save it "
                       "with PyTorch >= 1.6 (the default _use_new_zipfile_serialization=True)");
    if (magic[0] == 'P' && magic[1] == 'K')
      throw InputError(path_, "end-of-central-directory record",
                       "missing, though the file starts like a ZIP archive (truncated file?)");
    throw InputError(path_, "",
                     "not a ZIP archive (no end-of-central-directory record in its " + std::to_string(file_size_) +
                         " bytes); expected a torch.save file written by PyTorch >= 1.6");
  }
  const uint64_t eocd_offset = file_size_ - tail_size + static_cast<uint64_t>(found);
  const unsigned char* eocd = tail.data() + found;
  const std::string eocd_where = "end-of-central-directory record at byte " + std::to_string(eocd_offset);
  uint64_t disk = u16(eocd + 4), cd_disk = u16(eocd + 6);
  uint64_t count_on_disk = u16(eocd + 8), count = u16(eocd + 10);
  uint64_t cd_size = u32(eocd + 12), cd_offset = u32(eocd + 16);

  // ZIP64: a locator sits right before the EOCD record and points to the 64-bit record.
  if (eocd_offset >= kZip64LocatorSize) {
    unsigned char loc[kZip64LocatorSize];
    read_at(eocd_offset - kZip64LocatorSize, loc, sizeof loc, "ZIP64 end-of-central-directory locator");
    if (u32(loc) == kZip64LocatorSig) {
      const uint64_t z_offset = u64(loc + 8);
      const std::string z_where = "ZIP64 end-of-central-directory record at byte " + std::to_string(z_offset);
      if (u32(loc + 4) != 0 || u32(loc + 16) > 1)
        throw InputError(path_, "ZIP64 end-of-central-directory locator", "multi-disk archives are not supported");
      unsigned char z[kZip64EocdSize];
      read_at(z_offset, z, sizeof z, z_where);
      if (u32(z) != kZip64EocdSig)
        throw InputError(path_, z_where, "expected signature " + hex32(kZip64EocdSig) + ", found " + hex32(u32(z)));
      disk = u32(z + 16);
      cd_disk = u32(z + 20);
      count_on_disk = u64(z + 24);
      count = u64(z + 32);
      cd_size = u64(z + 40);
      cd_offset = u64(z + 48);
    }
  }
  if (disk != 0 || cd_disk != 0 || count_on_disk != count)
    throw InputError(path_, eocd_where, "multi-disk (split) archives are not supported");
  if (cd_offset > eocd_offset || cd_size > eocd_offset - cd_offset)
    throw InputError(path_, eocd_where,
                     "central directory (" + std::to_string(cd_size) + " bytes at byte " + std::to_string(cd_offset) +
                         ") does not fit before the end record at byte " + std::to_string(eocd_offset) +
                         " (truncated or corrupt file?)");
  // Each central header takes at least 46 bytes: bounds the count before anything is allocated.
  if (count > cd_size / kCentralHeaderSize)
    throw InputError(path_, eocd_where,
                     std::to_string(count) + " entries cannot fit in a central directory of " +
                         std::to_string(cd_size) + " bytes");

  std::vector<unsigned char> cd(cd_size);
  read_at(cd_offset, cd.data(), cd_size, "central directory");
  std::unordered_set<std::string> seen;
  size_t pos = 0;
  entries_.reserve(count);
  for (uint64_t k = 0; k < count; ++k) {
    const std::string where = "central directory entry " + std::to_string(k);
    if (cd_size - pos < kCentralHeaderSize)
      throw InputError(path_, where, "runs past the end of the central directory");
    const unsigned char* h = cd.data() + pos;
    if (u32(h) != kCentralHeaderSig)
      throw InputError(path_, where,
                       "expected signature " + hex32(kCentralHeaderSig) + ", found " + hex32(u32(h)));
    const size_t name_len = u16(h + 28), extra_len = u16(h + 30), comment_len = u16(h + 32);
    if (cd_size - pos - kCentralHeaderSize < name_len + extra_len + comment_len)
      throw InputError(path_, where, "name, extra field and comment run past the end of the central directory");
    ZipEntry e;
    e.flags = u16(h + 8);
    e.method = u16(h + 10);
    e.crc32 = u32(h + 16);
    e.compressed_size = u32(h + 20);
    e.size = u32(h + 24);
    e.local_header_offset = u32(h + 42);
    uint32_t start_disk = u16(h + 34);
    e.name.assign(reinterpret_cast<const char*>(h + kCentralHeaderSize), name_len);
    const std::string ewhere = where + " '" + e.name + "'";

    // ZIP64 extended information: 64-bit values for exactly the fields saturated above, in this order.
    const unsigned char* x = h + kCentralHeaderSize + name_len;
    const unsigned char* x_end = x + extra_len;
    while (x_end - x >= 4) {
      const uint16_t id = u16(x), len = u16(x + 2);
      if (x_end - x - 4 < len) throw InputError(path_, ewhere, "extra field runs past its declared length");
      if (id == kZip64ExtraId) {
        const unsigned char* f = x + 4;
        const unsigned char* f_end = f + len;
        auto take64 = [&](uint64_t& field) {
          if (f_end - f < 8) throw InputError(path_, ewhere, "ZIP64 extra field is too short");
          field = u64(f);
          f += 8;
        };
        if (e.size == 0xFFFFFFFFu) take64(e.size);
        if (e.compressed_size == 0xFFFFFFFFu) take64(e.compressed_size);
        if (e.local_header_offset == 0xFFFFFFFFu) take64(e.local_header_offset);
        if (start_disk == 0xFFFFu) {
          if (f_end - f < 4) throw InputError(path_, ewhere, "ZIP64 extra field is too short");
          start_disk = u32(f);
        }
      }
      x += 4 + len;
    }
    if (start_disk != 0) throw InputError(path_, ewhere, "multi-disk (split) archives are not supported");
    if (e.local_header_offset >= cd_offset)
      throw InputError(path_, ewhere,
                       "local header offset " + std::to_string(e.local_header_offset) +
                           " is not before the central directory at byte " + std::to_string(cd_offset));
    if (!seen.insert(e.name).second) throw InputError(path_, ewhere, "duplicate entry name");
    entries_.push_back(std::move(e));
    pos += kCentralHeaderSize + name_len + extra_len + comment_len;
  }
}

const ZipEntry* ZipArchive::find(std::string_view name) const {
  for (const ZipEntry& e : entries_)
    if (e.name == name) return &e;
  return nullptr;
}

std::string ZipArchive::read(std::string_view name) {
  const ZipEntry* e = find(name);
  if (!e) throw InputError(path_, quoted_entry(name), "no such entry in the archive");
  return read(*e);
}

std::string ZipArchive::read(const ZipEntry& e) {
  const std::string where = quoted_entry(e.name);
  if (e.flags & 0x1) throw InputError(path_, where, "encrypted entries are not supported");
  if (e.method != 0)
    throw InputError(path_, where,
                     "compressed with " + method_name(e.method) +
                         "; only STORED (uncompressed) entries are supported, as torch.save writes them "
                         "(was the archive re-zipped by another tool?)");
  if (e.compressed_size != e.size)
    throw InputError(path_, where,
                     "STORED entry with compressed size " + std::to_string(e.compressed_size) +
                         " != size " + std::to_string(e.size));

  unsigned char lh[kLocalHeaderSize];
  read_at(e.local_header_offset, lh, sizeof lh, where + " local header");
  if (u32(lh) != kLocalHeaderSig)
    throw InputError(path_, where + " local header at byte " + std::to_string(e.local_header_offset),
                     "expected signature " + hex32(kLocalHeaderSig) + ", found " + hex32(u32(lh)));
  const uint16_t method = u16(lh + 8), name_len = u16(lh + 26), extra_len = u16(lh + 28);
  if (method != e.method)
    throw InputError(path_, where + " local header",
                     "method " + std::to_string(method) + " differs from the central directory's " +
                         std::to_string(e.method));
  std::string local_name(name_len, '\0');
  read_at(e.local_header_offset + kLocalHeaderSize, local_name.data(), name_len, where + " local header");
  if (local_name != e.name)
    throw InputError(path_, where + " local header", "names '" + local_name + "', not the central directory's name");

  const uint64_t data_offset = e.local_header_offset + kLocalHeaderSize + name_len + extra_len;
  std::string data;
  if (data_offset > file_size_ || e.size > file_size_ - data_offset)
    throw InputError(path_, where,
                     "its " + std::to_string(e.size) + " bytes at byte " + std::to_string(data_offset) +
                         " run past the end of the " + std::to_string(file_size_) + "-byte file (truncated?)");
  data.resize(e.size);
  read_at(data_offset, data.data(), e.size, where);
  const uint32_t crc = qv::crc32(data.data(), data.size());
  if (crc != e.crc32)
    throw InputError(path_, where,
                     "CRC-32 mismatch: the central directory records " + hex32(e.crc32) + ", the data has " +
                         hex32(crc) + " (corrupt file)");
  return data;
}

}  // namespace qv::checkpoint
