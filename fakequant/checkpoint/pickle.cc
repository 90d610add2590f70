#include "fakequant/checkpoint/pickle.h"

#include <bit>
#include <cstdio>
#include <cstring>
#include <unordered_map>

#include "ir/error.h"

namespace qv::checkpoint {

const char* kind_name(PickleKind kind) {
  switch (kind) {
    case PickleKind::none: return "None";
    case PickleKind::boolean: return "bool";
    case PickleKind::integer: return "int";
    case PickleKind::floating: return "float";
    case PickleKind::string: return "str";
    case PickleKind::bytes: return "bytes";
    case PickleKind::list: return "list";
    case PickleKind::tuple: return "tuple";
    case PickleKind::set: return "set";
    case PickleKind::dict: return "dict";
    case PickleKind::global: return "global";
    case PickleKind::reduce: return "object";
    case PickleKind::persistent_id: return "persistent id";
  }
  return "?";
}

const PickleValue* PickleValue::get(std::string_view key) const {
  if (kind != PickleKind::dict) return nullptr;
  for (const auto& [k, v] : entries)
    if (k->kind == PickleKind::string && k->text == key) return v;
  return nullptr;
}

std::string PickleValue::describe() const {
  switch (kind) {
    case PickleKind::none: return "None";
    case PickleKind::boolean: return boolean ? "True" : "False";
    case PickleKind::integer: return "int " + std::to_string(integer);
    case PickleKind::floating: {
      char buf[32];
      std::snprintf(buf, sizeof buf, "float %.17g", floating);
      return buf;
    }
    case PickleKind::string: return "str '" + (text.size() > 40 ? text.substr(0, 40) + "..." : text) + "'";
    case PickleKind::bytes: return "bytes of length " + std::to_string(text.size());
    case PickleKind::list:
    case PickleKind::tuple:
    case PickleKind::set:
      return std::string(kind_name(kind)) + " of " + std::to_string(items.size()) + " items";
    case PickleKind::dict: return "dict of " + std::to_string(entries.size()) + " entries";
    case PickleKind::global: return "global " + text + "." + name;
    case PickleKind::reduce:
      return "call of " + (callable && callable->kind == PickleKind::global ? callable->text + "." + callable->name
                                                                              : std::string("a non-global"));
    case PickleKind::persistent_id: return "persistent id";
  }
  return "?";
}

namespace {

// Opcode bytes (Python's Lib/pickletools.py documents each).
enum Op : unsigned char {
  MARK = '(', STOP = '.', POP = '0', POP_MARK = '1', DUP = '2', BINFLOAT = 'G', BININT = 'J', BININT1 = 'K',
  BININT2 = 'M', NONE = 'N', BINPERSID = 'Q', REDUCE = 'R', BINSTRING = 'T', SHORT_BINSTRING = 'U',
  BINUNICODE = 'X', APPEND = 'a', BUILD = 'b', GLOBAL = 'c', DICT = 'd', EMPTY_DICT = '}', APPENDS = 'e',
  BINGET = 'h', LONG_BINGET = 'j', LIST = 'l', EMPTY_LIST = ']', BINPUT = 'q', LONG_BINPUT = 'r',
  SETITEM = 's', TUPLE = 't', EMPTY_TUPLE = ')', SETITEMS = 'u',
  // protocol 2
  PROTO = 0x80, NEWOBJ = 0x81, TUPLE1 = 0x85, TUPLE2 = 0x86, TUPLE3 = 0x87, NEWTRUE = 0x88, NEWFALSE = 0x89,
  LONG1 = 0x8a, LONG4 = 0x8b,
  // protocol 3
  BINBYTES = 'B', SHORT_BINBYTES = 'C',
  // protocol 4
  SHORT_BINUNICODE = 0x8c, BINUNICODE8 = 0x8d, BINBYTES8 = 0x8e, EMPTY_SET = 0x8f, ADDITEMS = 0x90,
  FROZENSET = 0x91, STACK_GLOBAL = 0x93, MEMOIZE = 0x94, FRAME = 0x95,
};

// Python dict-key equality for the hashable values a pickle can hold; other objects by identity.
// Tuples nested deeper than kMaxKeyDepth compare by identity (a hostile pickle cannot exhaust the stack).
constexpr int kMaxKeyDepth = 64;
bool key_equal(const PickleValue& a, const PickleValue& b, int depth = 0) {
  if (&a == &b) return true;
  if (depth > kMaxKeyDepth) return false;
  auto numeric = [](const PickleValue& v) {
    return v.kind == PickleKind::integer || v.kind == PickleKind::boolean || v.kind == PickleKind::floating;
  };
  if (numeric(a) && numeric(b)) {
    auto as_double = [](const PickleValue& v) {
      return v.kind == PickleKind::floating ? v.floating
                                            : static_cast<double>(v.kind == PickleKind::boolean ? v.boolean : v.integer);
    };
    if (a.kind != PickleKind::floating && b.kind != PickleKind::floating)
      return (a.kind == PickleKind::boolean ? int64_t{a.boolean} : a.integer) ==
             (b.kind == PickleKind::boolean ? int64_t{b.boolean} : b.integer);
    return as_double(a) == as_double(b);
  }
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case PickleKind::none: return true;
    case PickleKind::string:
    case PickleKind::bytes: return a.text == b.text;
    case PickleKind::global: return a.text == b.text && a.name == b.name;
    case PickleKind::tuple:
      if (a.items.size() != b.items.size()) return false;
      for (size_t i = 0; i < a.items.size(); ++i)
        if (!key_equal(*a.items[i], *b.items[i], depth + 1)) return false;
      return true;
    default: return false;
  }
}

}  // namespace

class Unpickler {
 public:
  Unpickler(std::string_view data, const std::string& file, const std::string& entry)
      : data_(data), file_(file), entry_(entry) {}

  PickleDocument run() {
    while (true) {
      op_pos_ = pos_;
      if (pos_ >= data_.size())
        throw InputError(file_, "entry '" + entry_ + "', pickle byte " + std::to_string(pos_),
                         "the pickle ends without a STOP opcode (truncated?)");
      op_ = byte();
      switch (op_) {
        case PROTO: {
          const unsigned proto = byte();
          if (proto > 5) fail("unsupported pickle protocol " + std::to_string(proto));
          break;
        }
        case FRAME: take(8); break;  // framing only groups opcodes; the data is read as one buffer
        case STOP: {
          doc_.root_ = pop();
          if (!stack_.empty() || !marks_.empty())
            fail("STOP leaves " + std::to_string(stack_.size()) + " extra values and " +
                 std::to_string(marks_.size()) + " open marks on the stack");
          return std::move(doc_);
        }
        case MARK: marks_.push_back(stack_.size()); break;
        case POP:
          if (!marks_.empty() && marks_.back() == stack_.size())
            marks_.pop_back();  // Python pops a MARK too when it is on top
          else
            pop();
          break;
        case POP_MARK: pop_mark(); break;
        case DUP: push(top()); break;

        case NONE: push(make(PickleKind::none)); break;
        case NEWTRUE:
        case NEWFALSE: {
          auto v = make(PickleKind::boolean);
          v->boolean = op_ == NEWTRUE;
          push(v);
          break;
        }
        case BININT: push_int(static_cast<int32_t>(le(4))); break;
        case BININT1: push_int(byte()); break;
        case BININT2: push_int(static_cast<int64_t>(le(2))); break;
        case LONG1: push_int(long_bytes(byte())); break;
        case LONG4: {
          const int64_t n = static_cast<int32_t>(le(4));
          if (n < 0) fail("negative LONG4 length");
          push_int(long_bytes(static_cast<uint64_t>(n)));
          break;
        }
        case BINFLOAT: {
          uint64_t bits = 0;
          for (unsigned char c : take(8)) bits = (bits << 8) | c;  // big-endian
          auto v = make(PickleKind::floating);
          v->floating = std::bit_cast<double>(bits);
          push(v);
          break;
        }

        case SHORT_BINUNICODE: push_text(PickleKind::string, byte()); break;
        case BINUNICODE: push_text(PickleKind::string, le(4)); break;
        case BINUNICODE8: push_text(PickleKind::string, le(8)); break;
        case SHORT_BINSTRING: push_text(PickleKind::string, byte()); break;
        case BINSTRING: {
          const int64_t n = static_cast<int32_t>(le(4));
          if (n < 0) fail("negative BINSTRING length");
          push_text(PickleKind::string, static_cast<uint64_t>(n));
          break;
        }
        case SHORT_BINBYTES: push_text(PickleKind::bytes, byte()); break;
        case BINBYTES: push_text(PickleKind::bytes, le(4)); break;
        case BINBYTES8: push_text(PickleKind::bytes, le(8)); break;

        case EMPTY_DICT: push(make(PickleKind::dict)); break;
        case EMPTY_LIST: push(make(PickleKind::list)); break;
        case EMPTY_TUPLE: push(make(PickleKind::tuple)); break;
        case EMPTY_SET: push(make(PickleKind::set)); break;
        case TUPLE: {
          auto v = make(PickleKind::tuple);
          set_from_mark(*v);
          push(v);
          break;
        }
        case TUPLE1:
        case TUPLE2:
        case TUPLE3: {
          const size_t n = op_ - TUPLE1 + 1u;
          if (stack_.size() < n + floor()) underflow(n);
          auto v = make(PickleKind::tuple);
          v->items.assign(stack_.end() - static_cast<std::ptrdiff_t>(n), stack_.end());
          stack_.resize(stack_.size() - n);
          push(v);
          break;
        }
        case LIST: {
          auto v = make(PickleKind::list);
          set_from_mark(*v);
          push(v);
          break;
        }
        case DICT: {
          auto v = make(PickleKind::dict);
          set_items(v, pop_mark());
          push(v);
          break;
        }
        case FROZENSET: {
          auto v = make(PickleKind::set);
          set_from_mark(*v);
          push(v);
          break;
        }
        case APPEND: {
          PickleValue* item = pop();
          append_to(*top(), {item});
          break;
        }
        case APPENDS: {
          std::vector<PickleValue*> items = pop_mark();
          append_to(*top(), items);
          break;
        }
        case ADDITEMS: {
          std::vector<PickleValue*> items = pop_mark();
          PickleValue& s = *top();
          if (s.kind != PickleKind::set) fail("ADDITEMS to a " + std::string(kind_name(s.kind)) + ", expected a set");
          s.items.insert(s.items.end(), items.begin(), items.end());
          break;
        }
        case SETITEM: {
          PickleValue* value = pop();
          PickleValue* key = pop();
          set_items(top(), {key, value});
          break;
        }
        case SETITEMS: {
          std::vector<PickleValue*> kv = pop_mark();
          set_items(top(), kv);
          break;
        }

        case BINPUT: memo_put(byte()); break;
        case LONG_BINPUT: memo_put(le(4)); break;
        case MEMOIZE: memo_put(memo_.size()); break;
        case BINGET: memo_get(byte()); break;
        case LONG_BINGET: memo_get(le(4)); break;

        case GLOBAL: {
          std::string module = line("GLOBAL module");
          std::string name = line("GLOBAL name");
          push_global(std::move(module), std::move(name));
          break;
        }
        case STACK_GLOBAL: {
          PickleValue* name = pop();
          PickleValue* module = pop();
          if (module->kind != PickleKind::string || name->kind != PickleKind::string)
            fail("STACK_GLOBAL needs two strings, found " + module->describe() + " and " + name->describe());
          push_global(module->text, name->text);
          break;
        }
        case REDUCE:
        case NEWOBJ: {
          PickleValue* args = pop();
          PickleValue* callable = pop();
          if (args->kind != PickleKind::tuple)
            fail(std::string(op_ == REDUCE ? "REDUCE" : "NEWOBJ") + " arguments must be a tuple, found " +
                 args->describe());
          if (callable->is_global("collections", "OrderedDict") && args->items.empty()) {
            push(make(PickleKind::dict));
            break;
          }
          auto v = make(PickleKind::reduce);
          v->callable = callable;
          v->args = args;
          push(v);
          break;
        }
        case BUILD: {
          PickleValue* state = pop();
          PickleValue& obj = *top();
          if (obj.kind == PickleKind::dict) break;  // OrderedDict attributes (state_dict._metadata)
          if (obj.kind != PickleKind::reduce) fail("BUILD on a " + std::string(kind_name(obj.kind)));
          obj.state = state;
          break;
        }
        case BINPERSID: {
          auto v = make(PickleKind::persistent_id);
          v->args = pop();
          push(v);
          break;
        }
        default: {
          char buf[8];
          std::snprintf(buf, sizeof buf, "0x%02x", op_);
          throw InputError(file_, where(), std::string("unknown or unsupported pickle opcode ") + buf);
        }
      }
    }
  }

 private:
  [[noreturn]] void fail(const std::string& what) const { throw InputError(file_, where(), what); }

  std::string where() const {
    char buf[64];
    if (op_ >= 0x20 && op_ < 0x7f)
      std::snprintf(buf, sizeof buf, "byte %zu (opcode '%c')", op_pos_, op_);
    else
      std::snprintf(buf, sizeof buf, "byte %zu (opcode 0x%02x)", op_pos_, op_);
    return "entry '" + entry_ + "', pickle " + buf;
  }

  std::string_view take(uint64_t n) {
    if (n > data_.size() - pos_)
      fail("needs " + std::to_string(n) + " more bytes but the pickle ends after " +
           std::to_string(data_.size() - pos_) + " (truncated?)");
    std::string_view s = data_.substr(pos_, static_cast<size_t>(n));
    pos_ += static_cast<size_t>(n);
    return s;
  }
  unsigned char byte() { return static_cast<unsigned char>(take(1)[0]); }
  uint64_t le(int n) {
    std::string_view s = take(static_cast<uint64_t>(n));
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(s[static_cast<size_t>(i)]);
    return v;
  }
  // A newline-terminated text argument (GLOBAL).
  std::string line(const char* what) {
    const size_t end = data_.find('\n', pos_);
    if (end == std::string_view::npos) fail(std::string(what) + " is not terminated by a newline (truncated?)");
    std::string s(data_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return s;
  }
  // Two's-complement little-endian integer of n bytes (LONG1/LONG4); must fit in int64.
  int64_t long_bytes(uint64_t n) {
    std::string_view s = take(n);
    if (n == 0) return 0;
    const auto at = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
    const size_t low = n < 8 ? static_cast<size_t>(n) : 8;
    uint64_t v = 0;
    for (size_t i = low; i-- > 0;) v = (v << 8) | at(i);
    if (low < 8 && (at(low - 1) & 0x80)) v |= ~uint64_t{0} << (8 * low);  // sign-extend
    const unsigned char ext = (v >> 63) ? 0xFF : 0x00;
    for (size_t i = 8; i < n; ++i)
      if (at(i) != ext) fail("integer of " + std::to_string(n) + " bytes does not fit in 64 bits");
    return static_cast<int64_t>(v);
  }

  size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  [[noreturn]] void underflow(size_t needed) const {
    fail("needs " + std::to_string(needed) + " values above the last mark but the stack holds " +
         std::to_string(stack_.size() - floor()));
  }
  PickleValue* make(PickleKind kind) {
    PickleValue& v = doc_.nodes_.emplace_back();
    v.kind = kind;
    return &v;
  }
  void push(PickleValue* v) { stack_.push_back(v); }
  PickleValue* pop() {
    if (stack_.size() <= floor()) underflow(1);
    PickleValue* v = stack_.back();
    stack_.pop_back();
    return v;
  }
  PickleValue* top() const {
    if (stack_.size() <= floor()) underflow(1);
    return stack_.back();
  }
  std::vector<PickleValue*> pop_mark() {
    if (marks_.empty()) fail("no MARK to pop to");
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<PickleValue*> items(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return items;
  }
  void set_from_mark(PickleValue& v) {
    const std::vector<PickleValue*> items = pop_mark();
    v.items.assign(items.begin(), items.end());
  }
  void push_int(int64_t i) {
    auto v = make(PickleKind::integer);
    v->integer = i;
    push(v);
  }
  void push_text(PickleKind kind, uint64_t n) {
    auto v = make(kind);
    v->text = std::string(take(n));
    push(v);
  }
  void push_global(std::string module, std::string name) {
    auto v = make(PickleKind::global);
    v->text = std::move(module);
    v->name = std::move(name);
    push(v);
  }
  void memo_put(uint64_t index) { memo_[index] = top(); }
  void memo_get(uint64_t index) {
    auto it = memo_.find(index);
    if (it == memo_.end()) fail("memo index " + std::to_string(index) + " was never stored");
    push(it->second);
  }
  void append_to(PickleValue& target, const std::vector<PickleValue*>& items) {
    if (target.kind != PickleKind::list && target.kind != PickleKind::reduce)
      fail("APPEND to a " + std::string(kind_name(target.kind)) + ", expected a list");
    target.items.insert(target.items.end(), items.begin(), items.end());
  }
  // Python dict semantics: a repeated key keeps its first position and takes the last value.
  void set_items(PickleValue* target_ptr, const std::vector<PickleValue*>& kv) {
    PickleValue& target = *target_ptr;
    if (target.kind != PickleKind::dict && target.kind != PickleKind::reduce)
      fail("SETITEM on a " + std::string(kind_name(target.kind)) + ", expected a dict");
    if (kv.size() % 2 != 0) fail("SETITEMS with an odd number (" + std::to_string(kv.size()) + ") of values");
    for (size_t i = 0; i < kv.size(); i += 2) {
      const PickleValue* key = kv[i];
      if (key->kind == PickleKind::string) {  // the common case, indexed: state_dicts can be large
        auto& index = string_keys_[&target];
        auto [it, inserted] = index.try_emplace(key->text, target.entries.size());
        if (inserted)
          target.entries.emplace_back(key, kv[i + 1]);
        else
          target.entries[it->second].second = kv[i + 1];
        continue;
      }
      bool replaced = false;
      for (auto& [k, v] : target.entries)
        if (key_equal(*k, *key)) {
          v = kv[i + 1];
          replaced = true;
          break;
        }
      if (!replaced) target.entries.emplace_back(key, kv[i + 1]);
    }
  }

  std::string_view data_;
  const std::string& file_;
  const std::string& entry_;
  size_t pos_ = 0, op_pos_ = 0;
  unsigned char op_ = 0;
  std::vector<PickleValue*> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, PickleValue*> memo_;
  // Per dict: string key -> position in entries.
  std::unordered_map<const PickleValue*, std::unordered_map<std::string, size_t>> string_keys_;
  PickleDocument doc_;
};

PickleDocument unpickle(std::string_view data, const std::string& file, const std::string& entry) {
  return Unpickler(data, file, entry).run();
}

}  // namespace qv::checkpoint
