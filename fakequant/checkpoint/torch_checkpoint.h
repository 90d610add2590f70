// Reading torch.save checkpoints (the ZIP format of PyTorch >= 1.6) without LibTorch.
//
// A torch.save file is a ZIP archive whose entries share one directory prefix (the file stem, or
// "archive" when saved to a stream): PREFIX/data.pkl pickles the saved object, with every tensor
// pickled as a call of torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...) whose
// storage is a persistent id ('storage', torch.FloatStorage, KEY, location, numel) naming the raw
// little-endian entry PREFIX/data/KEY. Tensors that view one storage share that entry. Details and
// what is supported: docs/checkpoints.md.
//
// TorchCheckpoint exposes the pickled object as a PickleValue tree and turns its tensor nodes into
// CheckpointTensor; read_state_dict() is the usual entry point for weights.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "fakequant/checkpoint/pickle.h"
#include "fakequant/checkpoint/zip_archive.h"

namespace qv::checkpoint {

struct CheckpointTensor {
  // The torch dtype without "torch.": float32, float64, float16, bfloat16, int64, int32, int16,
  // int8, uint8, bool.
  std::string dtype;
  std::vector<int64_t> shape;   // empty for a 0-dim tensor
  std::vector<int64_t> stride;  // as saved, in elements
  // Row-major, strides applied. Exact for every float32/float64/float16/bfloat16 value (including
  // infinities, NaN and -0.0) and for integers up to 2^53 in magnitude; bool is 0 or 1.
  std::vector<double> values;
  // Integer and bool dtypes only (empty otherwise): the same elements, exact at any magnitude.
  std::vector<int64_t> int_values;

  bool is_floating() const {
    return dtype == "float32" || dtype == "float64" || dtype == "float16" || dtype == "bfloat16";
  }
  int64_t numel() const { return static_cast<int64_t>(values.size()); }
};

using StateDict = std::vector<std::pair<std::string, CheckpointTensor>>;

class TorchCheckpoint {
 public:
  // Opens the archive, checks its layout (data.pkl, byte order) and unpickles data.pkl. Throws
  // InputError for anything that is not a readable torch.save ZIP archive.
  explicit TorchCheckpoint(std::string path);

  const std::string& path() const { return archive_.path(); }
  // The archive's directory prefix ("archive", or the stem of the file torch.save wrote).
  const std::string& prefix() const { return prefix_; }
  // The saved object.
  const PickleValue& root() const { return doc_.root(); }

  // Whether `v` is a pickled tensor (any torch._utils._rebuild_* call, supported or not).
  static bool is_tensor(const PickleValue& v);
  // Materializes the tensor node `v`; `where` names it in errors (e.g. "state_dict['conv.weight']").
  // Throws InputError for unsupported tensor kinds (quantized, sparse, ...) and storage types, and
  // for storages that are missing, corrupt, of the wrong size or too small for the view.
  CheckpointTensor tensor(const PickleValue& v, const std::string& where);

 private:
  CheckpointTensor tensor(const PickleValue& v, const std::string& where, int depth);
  const std::string& storage_bytes(const std::string& key, const std::string& where);

  ZipArchive archive_;
  std::string prefix_;
  PickleDocument doc_;
  std::string cached_key_, cached_bytes_;  // the last storage read: views of one storage are often adjacent
};

// The named tensors of the state_dict in `path`, in file order. The saved object may be
//   - a state_dict: a dict or collections.OrderedDict whose values include tensors, or
//   - a wrapper dict holding one under "state_dict", "model" or "net" (tried in that order; QuantLab
//     saves {'net': state_dict, 'epoch': ..., ...}); the wrapper's other entries are ignored.
// Names are reported as stored (a DataParallel "module." prefix is kept: renaming is the caller's
// job). Entries of the state_dict that are not tensors (a plain Python int, a nested dict) are
// skipped; their keys go to `skipped` when given. Tensors the reader cannot represent are errors.
// Throws InputError naming the file and the key.
StateDict read_state_dict(const std::string& path, std::vector<std::string>* skipped = nullptr);

}  // namespace qv::checkpoint
