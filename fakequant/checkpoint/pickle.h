// An unpickler for the subset of the pickle format that torch.save writes (protocol 2, plus the few
// protocol 3-5 opcodes that cost nothing: FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL, ...).
//
// What is a pickle? A program for a small stack machine: opcodes push values (ints, strings, empty
// containers), build containers from the values above a MARK, store and fetch values in a memo (so an
// object referenced twice is written once), and call "globals" (module.name) with arguments (REDUCE,
// NEWOBJ) to rebuild arbitrary objects. Python's unpickler imports and calls those globals; this one
// never executes anything: a call becomes a Reduce node recording the callable and its arguments, and
// the caller (torch_checkpoint.cc) interprets the few callables it knows, such as
// torch._utils._rebuild_tensor_v2. The one exception is collections.OrderedDict() with no
// arguments, which becomes a Dict, because every state_dict is one.
//
// Every node lives in the PickleDocument that unpickle() returns; nodes point at each other with plain
// pointers. The memo holds the same node as the stack, so a dict filled by SETITEMS after it was
// memoized is seen filled wherever it is referenced, and a hostile pickle that makes a container hold
// itself creates a cycle that costs nothing (no reference counts to leak). BUILD (an object's
// __setstate__) on a dict is ignored: for a state_dict it carries the `_metadata` attribute (module
// versions), which a reader of weights does not need.
//
// Malformed input (truncated data, unknown opcode, stack underflow, a memo index never stored, an
// integer beyond 64 bits) throws qv::InputError naming the file, the entry, the byte offset and the
// opcode.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace qv::checkpoint {

enum class PickleKind {
  none,
  boolean,
  integer,        // int64; wider Python ints are refused
  floating,       // double
  string,         // str (UTF-8)
  bytes,
  list,           // items
  tuple,          // items
  set,            // items (set and frozenset)
  dict,           // entries, in insertion order (dict and collections.OrderedDict)
  global,         // module, name: a class or function reference (GLOBAL / STACK_GLOBAL)
  reduce,         // callable(*args) not executed: callable, args; state from BUILD; items/entries from
                  // APPEND(S) / SETITEM(S) on it
  persistent_id,  // BINPERSID: args is the id object (for torch.save, the storage tuple)
};

const char* kind_name(PickleKind kind);

struct PickleValue {
  PickleKind kind = PickleKind::none;
  bool boolean = false;
  int64_t integer = 0;
  double floating = 0;
  std::string text;    // string and bytes contents; global: the module
  std::string name;    // global: the name inside the module
  std::vector<const PickleValue*> items;
  std::vector<std::pair<const PickleValue*, const PickleValue*>> entries;
  const PickleValue* callable = nullptr;
  const PickleValue* args = nullptr;
  const PickleValue* state = nullptr;

  bool is(PickleKind k) const { return kind == k; }
  bool is_global(std::string_view module, std::string_view global_name) const {
    return kind == PickleKind::global && text == module && name == global_name;
  }
  // For a reduce node: whether it calls module.name.
  bool calls(std::string_view module, std::string_view global_name) const {
    return kind == PickleKind::reduce && callable && callable->is_global(module, global_name);
  }
  // Dict lookup by string key; nullptr when absent or not a dict.
  const PickleValue* get(std::string_view key) const;
  // A short description for messages: "int 3", "str 'cpu'", "global torch.FloatStorage",
  // "dict of 5 entries", "call of torch._utils._rebuild_tensor_v2".
  std::string describe() const;
};

// The result of unpickling: owns every node. Movable, not copyable (nodes point at each other).
class PickleDocument {
 public:
  PickleDocument() = default;
  PickleDocument(PickleDocument&&) = default;
  PickleDocument& operator=(PickleDocument&&) = default;
  PickleDocument(const PickleDocument&) = delete;
  PickleDocument& operator=(const PickleDocument&) = delete;

  const PickleValue& root() const { return *root_; }

 private:
  friend class Unpickler;
  std::deque<PickleValue> nodes_;  // a deque never moves its elements
  const PickleValue* root_ = nullptr;
};

// Unpickles `data`, up to its STOP opcode. `file` and `entry` name the source in error messages.
PickleDocument unpickle(std::string_view data, const std::string& file, const std::string& entry);

}  // namespace qv::checkpoint
