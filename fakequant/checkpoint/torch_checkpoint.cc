#include "fakequant/checkpoint/torch_checkpoint.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

#include "ir/error.h"

namespace qv::checkpoint {

namespace {

struct StorageType {
  const char* storage;  // the class torch.save names in the persistent id
  const char* dtype;
  size_t element_size;
};

constexpr StorageType kStorageTypes[] = {
    {"FloatStorage", "float32", 4}, {"DoubleStorage", "float64", 8}, {"HalfStorage", "float16", 2},
    {"BFloat16Storage", "bfloat16", 2}, {"LongStorage", "int64", 8}, {"IntStorage", "int32", 4},
    {"ShortStorage", "int16", 2},   {"CharStorage", "int8", 1},      {"ByteStorage", "uint8", 1},
    {"BoolStorage", "bool", 1},
};

// A view can claim more elements than its storage holds (stride 0 after expand(), overlapping
// as_strided). Beyond this many, and beyond its storage's size, it is refused before allocating, so a
// hostile file cannot ask for more memory than about eight times its own size or 512 MiB.
constexpr int64_t kMaxBroadcastElements = int64_t{1} << 26;

uint64_t load_le(const unsigned char* p, size_t n) {
  uint64_t v = 0;
  for (size_t i = n; i-- > 0;) v = (v << 8) | p[i];
  return v;
}

// IEEE binary16 -> double, exactly (every half value is a double).
double half_to_double(uint16_t h) {
  const int sign = h >> 15, exponent = (h >> 10) & 0x1F, mantissa = h & 0x3FF;
  double magnitude;
  if (exponent == 0)
    magnitude = std::ldexp(mantissa, -24);  // zero and subnormals
  else if (exponent == 31)
    magnitude = mantissa ? std::numeric_limits<double>::quiet_NaN() : std::numeric_limits<double>::infinity();
  else
    magnitude = std::ldexp(mantissa | 0x400, exponent - 25);
  return sign ? -magnitude : magnitude;
}

// One element of storage type `type` at `p` (little-endian). For integer types `exact` gets the value.
double decode(const StorageType& type, const unsigned char* p, int64_t* exact) {
  const std::string_view dtype = type.dtype;
  if (dtype == "float32") return std::bit_cast<float>(static_cast<uint32_t>(load_le(p, 4)));
  if (dtype == "float64") return std::bit_cast<double>(load_le(p, 8));
  if (dtype == "float16") return half_to_double(static_cast<uint16_t>(load_le(p, 2)));
  if (dtype == "bfloat16") return std::bit_cast<float>(static_cast<uint32_t>(load_le(p, 2) << 16));
  int64_t v;
  if (dtype == "int64") v = static_cast<int64_t>(load_le(p, 8));
  else if (dtype == "int32") v = static_cast<int32_t>(load_le(p, 4));
  else if (dtype == "int16") v = static_cast<int16_t>(load_le(p, 2));
  else if (dtype == "int8") v = static_cast<int8_t>(p[0]);
  else if (dtype == "uint8") v = p[0];
  else v = p[0] != 0;  // bool
  *exact = v;
  return static_cast<double>(v);
}

bool is_floating(const StorageType& t) {
  const std::string_view d = t.dtype;
  return d == "float32" || d == "float64" || d == "float16" || d == "bfloat16";
}

std::string subscript(const std::string& key) { return "['" + key + "']"; }

}  // namespace

TorchCheckpoint::TorchCheckpoint(std::string path) : archive_(std::move(path)) {
  const auto& entries = archive_.entries();
  if (entries.empty()) throw InputError(archive_.path(), "", "empty ZIP archive; expected a torch.save file");
  const std::string& first = entries.front().name;
  const size_t slash = first.find('/');
  if (slash == std::string::npos || slash == 0)
    throw InputError(archive_.path(), "entry '" + first + "'",
                     "expected 'PREFIX/data.pkl' (every torch.save entry sits in one directory)");
  prefix_ = first.substr(0, slash);
  const std::string pkl = prefix_ + "/data.pkl";
  if (!archive_.find(pkl)) {
    if (archive_.find(prefix_ + "/constants.pkl") || archive_.find(prefix_ + "/code/__torch__.py"))
      throw InputError(archive_.path(), "entry '" + pkl + "'",
                       "missing: this is a TorchScript archive (torch.jit.save), not a torch.save checkpoint");
    throw InputError(archive_.path(), "entry '" + pkl + "'", "missing: not a torch.save archive");
  }
  if (const ZipEntry* order = archive_.find(prefix_ + "/byteorder")) {
    const std::string bytes = archive_.read(*order);
    if (bytes != "little")
      throw InputError(archive_.path(), "entry '" + order->name + "'",
                       "byte order '" + bytes + "' is not supported; expected 'little'");
  }
  doc_ = unpickle(archive_.read(pkl), archive_.path(), pkl);
}

bool TorchCheckpoint::is_tensor(const PickleValue& v) {
  return v.kind == PickleKind::reduce && v.callable && v.callable->kind == PickleKind::global &&
         (v.callable->text == "torch._utils" || v.callable->text == "torch._tensor") &&
         v.callable->name.starts_with("_rebuild_");
}

const std::string& TorchCheckpoint::storage_bytes(const std::string& key, const std::string& where) {
  if (key != cached_key_ || cached_key_.empty()) {
    const std::string name = prefix_ + "/data/" + key;
    if (!archive_.find(name))
      throw InputError(archive_.path(), where, "its storage entry '" + name + "' is missing from the archive");
    cached_key_.clear();
    try {
      cached_bytes_ = archive_.read(name);
    } catch (const InputError& e) {  // name the tensor as well as the entry
      throw InputError(e.file(), where + ", storage " + e.where(), e.problem());
    }
    cached_key_ = key;
  }
  return cached_bytes_;
}

CheckpointTensor TorchCheckpoint::tensor(const PickleValue& v, const std::string& where) {
  return tensor(v, where, 0);
}

CheckpointTensor TorchCheckpoint::tensor(const PickleValue& v, const std::string& where, int depth) {
  const std::string& file = archive_.path();
  auto fail = [&](const std::string& what) -> InputError { return InputError(file, where, what); };
  if (!is_tensor(v)) throw fail("expected a tensor, found " + v.describe());
  if (depth > 4) throw fail("tensor wrapped in more than 4 levels of parameter / subclass rebuild calls");
  const std::string& fn = v.callable->name;
  const auto& args = v.args->items;

  // Wrappers around a plain tensor.
  if (fn == "_rebuild_parameter" || fn == "_rebuild_parameter_with_state") {
    if (args.empty()) throw fail("torch._utils." + fn + " without arguments");
    return tensor(*args[0], where, depth + 1);
  }
  if (fn == "_rebuild_from_type_v2") {  // (func, type, args, state) for tensor subclasses, torch >= 1.12
    if (args.size() < 3 || args[2]->kind != PickleKind::tuple) throw fail("malformed torch._tensor._rebuild_from_type_v2");
    PickleValue inner;
    inner.kind = PickleKind::reduce;
    inner.callable = args[0];
    inner.args = args[2];
    return tensor(inner, where, depth + 1);
  }
  if (fn != "_rebuild_tensor_v2" && fn != "_rebuild_tensor")
    throw fail("tensor rebuilt by " + v.callable->text + "." + fn +
               " is not supported (only dense CPU-layout tensors: quantized, sparse and other kinds are not)");
  if (args.size() < 4)
    throw fail(v.callable->text + "." + fn + " needs (storage, offset, size, stride, ...), found " +
               std::to_string(args.size()) + " arguments");

  // The persistent id: ('storage', torch.<Type>Storage, key, location, numel).
  const PickleValue& pid_node = *args[0];
  if (pid_node.kind != PickleKind::persistent_id || !pid_node.args || pid_node.args->kind != PickleKind::tuple ||
      pid_node.args->items.size() < 5)
    throw fail("storage argument is a " + pid_node.describe() +
               ", expected the persistent id ('storage', type, key, location, numel)");
  const auto& pid = pid_node.args->items;
  if (pid[0]->kind != PickleKind::string || pid[0]->text != "storage")
    throw fail("persistent id starts with " + pid[0]->describe() + ", expected 'storage'");
  if (pid[1]->kind != PickleKind::global)
    throw fail("storage type is a " + pid[1]->describe() + ", expected a torch storage class");
  const StorageType* type = nullptr;
  for (const StorageType& t : kStorageTypes)
    if (pid[1]->text == "torch" && pid[1]->name == t.storage) type = &t;
  if (!type)
    throw fail("storage type " + pid[1]->text + "." + pid[1]->name +
               " is not supported (float32/64, float16, bfloat16, int8/16/32/64, uint8, bool are)");
  if (pid[2]->kind != PickleKind::string) throw fail("storage key is a " + pid[2]->describe() + ", expected a str");
  if (pid[4]->kind != PickleKind::integer || pid[4]->integer < 0)
    throw fail("storage size is a " + pid[4]->describe() + ", expected a non-negative int");
  const std::string& key = pid[2]->text;
  const int64_t storage_numel = pid[4]->integer;

  auto ints = [&](const PickleValue& t, const char* what) {
    if (t.kind != PickleKind::tuple) throw fail(std::string(what) + " is a " + t.describe() + ", expected a tuple of ints");
    std::vector<int64_t> out;
    for (const auto& item : t.items) {
      if (item->kind != PickleKind::integer || item->integer < 0)
        throw fail(std::string(what) + " holds " + item->describe() + ", expected non-negative ints");
      out.push_back(item->integer);
    }
    return out;
  };
  if (args[1]->kind != PickleKind::integer || args[1]->integer < 0)
    throw fail("storage offset is a " + args[1]->describe() + ", expected a non-negative int");
  const int64_t offset = args[1]->integer;
  CheckpointTensor out;
  out.dtype = type->dtype;
  out.shape = ints(*args[2], "size");
  out.stride = ints(*args[3], "stride");
  if (out.shape.size() != out.stride.size())
    throw fail("size has " + std::to_string(out.shape.size()) + " dimensions but stride has " +
               std::to_string(out.stride.size()));

  // Element count and the highest storage element the view touches, both overflow-checked.
  int64_t numel = 1, last = offset;
  for (size_t d = 0; d < out.shape.size(); ++d) {
    if (numel == 0 || out.shape[d] == 0) {
      numel = 0;
    } else if (__builtin_mul_overflow(numel, out.shape[d], &numel)) {
      throw fail("size overflows 64 bits");
    }
  }
  if (numel > storage_numel && numel > kMaxBroadcastElements)
    throw fail("a view of " + std::to_string(numel) + " elements over a storage of " + std::to_string(storage_numel) +
               ": expanded or overlapping views beyond 2^26 elements are not supported");
  if (numel > 0) {
    for (size_t d = 0; d < out.shape.size(); ++d) {
      int64_t span;
      if (__builtin_mul_overflow(out.shape[d] - 1, out.stride[d], &span) || __builtin_add_overflow(last, span, &last))
        throw fail("size and stride overflow 64 bits");
    }
    if (last >= storage_numel)
      throw fail("view (offset " + std::to_string(offset) + ", last element " + std::to_string(last) +
                 ") exceeds its storage '" + key + "' of " + std::to_string(storage_numel) + " elements");
  }

  const std::string& bytes = storage_bytes(key, where);
  if (bytes.size() % type->element_size != 0 ||
      bytes.size() / type->element_size != static_cast<uint64_t>(storage_numel))
    throw fail("storage entry '" + prefix_ + "/data/" + key + "' has " + std::to_string(bytes.size()) +
               " bytes, expected " + std::to_string(storage_numel) + " " + type->dtype + " elements of " +
               std::to_string(type->element_size) + " bytes");

  // Row-major walk over the view: an odometer on the index, the storage position follows the strides.
  const auto* base = reinterpret_cast<const unsigned char*>(bytes.data());
  const bool integral = !is_floating(*type);
  out.values.resize(static_cast<size_t>(numel));
  if (integral) out.int_values.resize(static_cast<size_t>(numel));
  std::vector<int64_t> index(out.shape.size(), 0);
  int64_t pos = offset;
  for (int64_t i = 0; i < numel; ++i) {
    int64_t exact = 0;
    out.values[static_cast<size_t>(i)] = decode(*type, base + static_cast<size_t>(pos) * type->element_size, &exact);
    if (integral) out.int_values[static_cast<size_t>(i)] = exact;
    for (size_t d = out.shape.size(); d-- > 0;) {
      pos += out.stride[d];
      if (++index[d] < out.shape[d]) break;
      pos -= out.stride[d] * out.shape[d];
      index[d] = 0;
    }
  }
  return out;
}

StateDict read_state_dict(const std::string& path, std::vector<std::string>* skipped) {
  TorchCheckpoint ckpt(path);
  const PickleValue& root = ckpt.root();
  auto has_tensor = [](const PickleValue& d) {
    for (const auto& [k, v] : d.entries)
      if (TorchCheckpoint::is_tensor(*v)) return true;
    return false;
  };
  const std::string expected =
      "expected a state_dict (a dict of tensors) or a dict holding one under 'state_dict', 'model' or 'net'";
  if (root.kind != PickleKind::dict) throw InputError(path, "the saved object", "is a " + root.describe() + "; " + expected);

  const PickleValue* dict = nullptr;
  std::string where = "state_dict";
  for (const char* wrapper : {"state_dict", "model", "net"}) {
    const PickleValue* inner = root.get(wrapper);
    if (inner && inner->kind == PickleKind::dict && has_tensor(*inner)) {
      dict = inner;
      where += subscript(wrapper);
      break;
    }
  }
  if (!dict) {
    if (!has_tensor(root)) {
      std::string keys;
      for (const auto& [k, v] : root.entries) {
        if (keys.size() > 200) {
          keys += ", ...";
          break;
        }
        keys += (keys.empty() ? "" : ", ") + (k->kind == PickleKind::string ? "'" + k->text + "'" : k->describe()) +
                ": " + v->describe();
      }
      throw InputError(path, "the saved object", "a dict without tensors {" + keys + "}; " + expected);
    }
    dict = &root;
  }

  StateDict out;
  for (const auto& [k, v] : dict->entries) {
    if (k->kind != PickleKind::string)
      throw InputError(path, where, "has a key that is a " + k->describe() + "; state_dict keys are strings");
    const std::string entry_where = where + subscript(k->text);
    if (!TorchCheckpoint::is_tensor(*v)) {
      if (skipped) skipped->push_back(k->text);
      continue;
    }
    out.emplace_back(k->text, ckpt.tensor(*v, entry_where));
  }
  return out;
}

}  // namespace qv::checkpoint
