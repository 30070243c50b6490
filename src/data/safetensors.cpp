// safetensors reading and writing: the header is written by nlohmann-json and read by a small
// strict JSON reader (it refuses duplicate keys, which nlohmann-json would silently resolve).
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "tinytorch/autograd.hpp"
#include "tinytorch/file_io.hpp"
#include "tinytorch/serialize.hpp"

namespace tinytorch {
namespace {

constexpr uint64_t kMaxHeader = 100u << 20;  // 100 MiB, as the safetensors reference

// --- a strict JSON reader for the header: objects, arrays, strings, integers -----------------

struct Json {
  enum class Kind { Object, Array, String, Number } kind = Kind::Object;
  std::vector<std::string> keys;  // an object's members: keys[i] -> values[i], in file order
  std::vector<Json> values;
  std::vector<Json> array;
  std::string string;
  int64_t number = 0;
  const Json* get(const std::string& key) const {
    for (size_t i = 0; i < keys.size(); ++i)
      if (keys[i] == key) return &values[i];
    return nullptr;
  }
};

class JsonReader {
 public:
  JsonReader(const std::string& text, const std::string& path) : s_(text), path_(path) {}
  Json document() {
    Json j = value(0);
    skip_space();
    if (i_ != s_.size()) fail("trailing characters after the header's JSON");
    return j;
  }

 private:
  [[noreturn]] void fail(const std::string& why) {
    throw DataError("'" + path_ + "': bad safetensors header at byte " + std::to_string(8 + i_) + ": " + why);
  }
  void skip_space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\r' || s_[i_] == '\t')) ++i_;
  }
  char peek() {
    skip_space();
    if (i_ >= s_.size()) fail("unexpected end");
    return s_[i_];
  }
  void expect(char c) {
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++i_;
  }
  Json value(int depth) {
    if (depth > 8) fail("nested too deeply");
    const char c = peek();
    Json j;
    if (c == '{') {
      ++i_;
      if (peek() == '}') return ++i_, j;
      std::set<std::string> seen;
      while (true) {
        const size_t at = i_;
        std::string key = string();
        if (!seen.insert(key).second) {
          i_ = at;
          fail("the key '" + key + "' appears twice in one object");
        }
        j.keys.push_back(std::move(key));
        expect(':');
        j.values.push_back(value(depth + 1));
        if (peek() == ',') {
          ++i_;
          continue;
        }
        expect('}');
        return j;
      }
    }
    if (c == '[') {
      ++i_;
      j.kind = Json::Kind::Array;
      if (peek() == ']') return ++i_, j;
      while (true) {
        j.array.push_back(value(depth + 1));
        if (peek() == ',') {
          ++i_;
          continue;
        }
        expect(']');
        return j;
      }
    }
    if (c == '"') {
      j.kind = Json::Kind::String;
      j.string = string();
      return j;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
      j.kind = Json::Kind::Number;
      const size_t start = i_;
      if (s_[i_] == '-') ++i_;
      while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
      const std::string digits = s_.substr(start, i_ - start);
      if (digits.empty() || digits == "-" || digits.size() > 18) fail("a number out of range");
      j.number = std::stoll(digits);
      return j;
    }
    fail("unexpected character");
  }
  std::string string() {
    expect('"');
    std::string out;
    while (true) {
      if (i_ >= s_.size()) fail("unterminated string");
      const char c = s_[i_++];
      if (c == '"') return out;
      if (c == '\\') {
        if (i_ >= s_.size()) fail("unterminated escape");
        const char e = s_[i_++];
        if (e == 'n')
          out += '\n';
        else if (e == 't')
          out += '\t';
        else if (e == 'r')
          out += '\r';
        else if (e == 'b')
          out += '\b';
        else if (e == 'f')
          out += '\f';
        else if (e == '"' || e == '\\' || e == '/')
          out += e;
        else if (e == 'u')
          append_utf8(out, code_point());
        else
          fail("unsupported escape");
      } else {
        out += c;
      }
    }
  }
  unsigned hex4() {
    if (s_.size() - i_ < 4) fail("unterminated \\u escape");
    unsigned v = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = s_[i_++];
      v <<= 4;
      if (c >= '0' && c <= '9')
        v |= static_cast<unsigned>(c - '0');
      else if (c >= 'a' && c <= 'f')
        v |= static_cast<unsigned>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        v |= static_cast<unsigned>(c - 'A' + 10);
      else
        fail("a bad hex digit in a \\u escape");
    }
    return v;
  }
  // After "\u": one code point, joining a UTF-16 surrogate pair.
  unsigned code_point() {
    const unsigned high = hex4();
    if (high < 0xD800 || high > 0xDFFF) return high;
    if (high > 0xDBFF || s_.compare(i_, 2, "\\u") != 0) fail("a lone UTF-16 surrogate");
    i_ += 2;
    const unsigned low = hex4();
    if (low < 0xDC00 || low > 0xDFFF) fail("a lone UTF-16 surrogate");
    return 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
  }
  static void append_utf8(std::string& out, unsigned cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }
  const std::string& s_;
  const std::string& path_;
  size_t i_ = 0;
};

// pread until `size` bytes have arrived (DataError if the file ends first).
void read_at(int fd, char* out, uint64_t size, uint64_t offset, const std::string& path, const std::string& what) {
  while (size > 0) {
    const ssize_t n = ::pread(fd, out, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      throw DataError("'" + path + "': could not read " + what +
                      (n < 0 ? std::string(": ") + std::strerror(errno) : " (truncated)"));
    }
    out += n;
    size -= static_cast<uint64_t>(n);
    offset += static_cast<uint64_t>(n);
  }
}

// Closes a descriptor on every path out of the loader.
struct FdCloser {
  int fd;
  ~FdCloser() { ::close(fd); }
};

}  // namespace

const Tensor* SafeTensors::find(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return &t;
  return nullptr;
}

namespace {

const char* safetensors_dtype(DType d) {
  switch (d) {
    case DType::Bool:
      return "BOOL";
    case DType::Int64:
      return "I64";
    case DType::Float32:
      break;
  }
  return "F32";
}

// A dtype a file may hold, and the tinytorch dtype it is read as: floats as float32, integers
// as int64 (PyTorch saves num_batches_tracked as I64, and weights as F16 or BF16 at times).
struct FileDType {
  const char* name;
  uint64_t bytes;
  DType as;
};

constexpr FileDType kFileDTypes[] = {
    {"F32", 4, DType::Float32}, {"F64", 8, DType::Float32}, {"F16", 2, DType::Float32}, {"BF16", 2, DType::Float32},
    {"I64", 8, DType::Int64},   {"I32", 4, DType::Int64},   {"I16", 2, DType::Int64},   {"I8", 1, DType::Int64},
    {"U8", 1, DType::Int64},    {"BOOL", 1, DType::Bool}};

const FileDType* find_file_dtype(const std::string& name) {
  for (const FileDType& d : kFileDTypes)
    if (name == d.name) return &d;
  return nullptr;
}

// IEEE half (binary16) to float: subnormals, infinities and NaN included.
float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu;
  uint32_t bits;
  if (exponent == 0x1f) {
    bits = sign | 0x7f800000u | (mantissa << 13);
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    bits = sign;
  } else {  // subnormal: normalise
    exponent = 113;
    while (!(mantissa & 0x400u)) mantissa <<= 1, --exponent;
    bits = sign | (exponent << 23) | ((mantissa & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

template <class From>
From load_le(const char* p) {
  From v;
  std::memcpy(&v, p, sizeof(From));  // the file is little-endian, as this machine is
  return v;
}

Tensor convert_file_data(const std::vector<char>& raw, const FileDType& stored, Shape shape) {
  Tensor t = Tensor::empty(std::move(shape), stored.as);
  const int64_t n = t.numel();
  const std::string name = stored.name;
  if (name == "F32" || name == "I64") {
    if (n > 0) std::memcpy(t.raw_data_to_write(), raw.data(), raw.size());
    return t;
  }
  float* const f = t.dtype() == DType::Float32 ? t.ptr_to_write<float>() : nullptr;
  int64_t* const q = t.dtype() == DType::Int64 ? t.ptr_to_write<int64_t>() : nullptr;
  bool* const truth = t.dtype() == DType::Bool ? t.ptr_to_write<bool>() : nullptr;
  for (int64_t i = 0; i < n; ++i) {
    const char* p = raw.data() + static_cast<size_t>(i) * stored.bytes;
    if (name == "F64") f[i] = static_cast<float>(load_le<double>(p));
    if (name == "F16") f[i] = half_to_float(load_le<uint16_t>(p));
    if (name == "BF16") {
      const uint32_t bits = static_cast<uint32_t>(load_le<uint16_t>(p)) << 16;
      std::memcpy(f + i, &bits, 4);
    }
    if (name == "I32") q[i] = load_le<int32_t>(p);
    if (name == "I16") q[i] = load_le<int16_t>(p);
    if (name == "I8") q[i] = load_le<int8_t>(p);  // NOLINT(bugprone-signed-char-misuse): signed
    if (name == "U8") q[i] = load_le<uint8_t>(p);
    if (name == "BOOL") truth[i] = *p != 0;
  }
  return t;
}

}  // namespace

void save_safetensors(const std::string& path, const SafeTensors& contents) {
  // Header: {"__metadata__": {...}, "name": {"dtype": "F32", "shape": [...], "data_offsets": [b, e]}, ...}
  // in the tensors' order (ordered_json keeps insertion order; the file's data follows it).
  nlohmann::ordered_json h = nlohmann::ordered_json::object();
  if (!contents.metadata.empty()) h["__metadata__"] = contents.metadata;
  std::set<std::string> names;
  uint64_t offset = 0;
  for (const auto& [name, t] : contents.tensors) {
    if (name == "__metadata__" || !names.insert(name).second) {
      throw ArgumentError("save_safetensors: the tensor name '" + name + "' is reserved or given twice");
    }
    const uint64_t bytes = static_cast<uint64_t>(t.numel()) * element_size(t.dtype());
    h[name] = {
        {"dtype", safetensors_dtype(t.dtype())}, {"shape", t.shape()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string header;
  try {
    header = h.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::strict);
  } catch (const nlohmann::ordered_json::exception&) {
    throw ArgumentError("save_safetensors: a tensor name or metadata string is not valid UTF-8");
  }
  header.append((8 - header.size() % 8) % 8, ' ');  // pad so the data starts 8-byte aligned

  AtomicFile file(path);
  uint8_t size[8];
  for (int i = 0; i < 8; ++i) size[i] = static_cast<uint8_t>(static_cast<uint64_t>(header.size()) >> (8 * i));
  file.write(size, 8);
  file.write(header);
  for (const auto& [name, t] : contents.tensors) {  // little-endian: this machine's own layout
    const Tensor dense = t.contiguous();
    file.write(dense.read_raw_data(), static_cast<size_t>(t.numel()) * element_size(t.dtype()));
  }
  file.commit();
}

SafeTensors load_safetensors(const std::string& path) {
  uint64_t file_size = 0;
  const FdCloser fd{open_regular_file(path, std::numeric_limits<uint64_t>::max(), &file_size)};
  if (file_size < 8) {
    throw DataError("'" + path + "': too short for a safetensors file (" + std::to_string(file_size) + " bytes)");
  }
  uint8_t size_bytes[8];
  read_at(fd.fd, reinterpret_cast<char*>(size_bytes), 8, 0, path, "the header length");
  uint64_t header_size = 0;
  for (int i = 0; i < 8; ++i) header_size |= static_cast<uint64_t>(size_bytes[i]) << (8 * i);
  if (header_size > kMaxHeader || header_size > file_size - 8) {
    throw DataError("'" + path + "': header length " + std::to_string(header_size) + " does not fit the file (" +
                    std::to_string(file_size) + " bytes): truncated or not safetensors");
  }
  std::string text(header_size, '\0');
  read_at(fd.fd, text.data(), header_size, 8, path, "the header");
  const Json doc = JsonReader(text, path).document();
  if (doc.kind != Json::Kind::Object) throw DataError("'" + path + "': the header is not a JSON object");
  const uint64_t data_size = file_size - 8 - header_size;

  SafeTensors out;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (size_t member = 0; member < doc.keys.size(); ++member) {
    const std::string& name = doc.keys[member];
    const Json& entry = doc.values[member];
    if (name == "__metadata__") {
      if (entry.kind != Json::Kind::Object) throw DataError("'" + path + "': __metadata__ must be a JSON object");
      for (size_t i = 0; i < entry.keys.size(); ++i) {
        if (entry.values[i].kind != Json::Kind::String)
          throw DataError("'" + path + "': metadata values must be strings");
        out.metadata[entry.keys[i]] = entry.values[i].string;
      }
      continue;
    }
    if (entry.kind != Json::Kind::Object) throw DataError("'" + path + "': tensor '" + name + "' is not a JSON object");
    const Json* dtype = entry.get("dtype");
    const Json* shape = entry.get("shape");
    const Json* offsets = entry.get("data_offsets");
    if (!dtype || dtype->kind != Json::Kind::String)
      throw DataError("'" + path + "': tensor '" + name + "' has no dtype string");
    if (!shape || !offsets || shape->kind != Json::Kind::Array || offsets->kind != Json::Kind::Array ||
        offsets->array.size() != 2) {
      throw DataError("'" + path + "': tensor '" + name + "' needs a shape and two data_offsets");
    }
    const FileDType* stored = find_file_dtype(dtype->string);
    if (!stored) {
      throw DataError("'" + path + "': tensor '" + name + "' has dtype " + dtype->string +
                      "; supported: F32, F64, F16, BF16, I64, I32, I16, I8, U8, BOOL");
    }
    const uint64_t item = stored->bytes;
    Shape s;
    for (const Json& d : shape->array) {
      if (d.kind != Json::Kind::Number || d.number < 0)
        throw DataError("'" + path + "': tensor '" + name + "' has a bad shape");
      s.push_back(d.number);
    }
    int64_t numel;
    try {
      numel = checked_numel(s);
    } catch (const ShapeError&) {
      throw DataError("'" + path + "': tensor '" + name + "' has a shape too large to count");
    }
    const Json &b = offsets->array[0], &e = offsets->array[1];
    // numel is compared with the data size before it is multiplied, so the product cannot wrap.
    if (b.kind != Json::Kind::Number || e.kind != Json::Kind::Number || b.number < 0 || e.number < b.number ||
        static_cast<uint64_t>(e.number) > data_size || static_cast<uint64_t>(numel) > data_size / item ||
        static_cast<uint64_t>(e.number - b.number) != static_cast<uint64_t>(numel) * item) {
      throw DataError("'" + path + "': tensor '" + name + "' has data_offsets outside the " +
                      std::to_string(data_size) + " bytes of data or not matching its shape (truncated?)");
    }
    std::vector<char> raw(static_cast<size_t>(numel) * item);
    read_at(fd.fd, raw.data(), raw.size(), 8 + header_size + static_cast<uint64_t>(b.number), path,
            "the data of '" + name + "'");
    Tensor t = convert_file_data(raw, *stored, std::move(s));
    ranges.emplace_back(b.number, e.number);
    out.tensors.emplace_back(name, std::move(t));
  }
  // The tensors must tile the data exactly: no gaps, no overlaps.
  std::sort(ranges.begin(), ranges.end());
  uint64_t at = 0;
  for (const auto& [b, e] : ranges) {
    if (b != at) throw DataError("'" + path + "': tensor data overlaps or leaves a gap at byte " + std::to_string(at));
    at = e;
  }
  if (at != data_size)
    throw DataError("'" + path + "': " + std::to_string(data_size - at) + " bytes after the last tensor");
  return out;
}

namespace {

constexpr int64_t kMaxOptimizerSteps = int64_t{1} << 53;  // beyond any run; keeps steps + 1 exact in a double

NamedTensors module_state(const Module& model) {
  NamedTensors out = model.named_parameters();
  for (auto& b : model.named_buffers()) out.push_back(b);
  return out;
}

std::string list_names(const std::vector<std::string>& names) {
  std::string out;
  const size_t shown = std::min<size_t>(names.size(), 20);
  for (size_t i = 0; i < shown; ++i) {
    if (i) out += ", ";
    out += '\'';
    out += names[i];
    out += '\'';
  }
  if (names.size() > shown) out += " and " + std::to_string(names.size() - shown) + " more";
  return out;
}

}  // namespace

void save_checkpoint(const std::string& path, const NamedTensors& state, const Optimizer* optimizer,
                     std::map<std::string, std::string> metadata) {
  SafeTensors c;
  c.tensors = state;
  if (optimizer) {
    for (auto& [name, t] : optimizer->state()) c.tensors.emplace_back("optimizer." + name, t);
    metadata["optimizer"] = optimizer->type_name();
    metadata["optimizer_steps"] = std::to_string(optimizer->steps());
    metadata["lr"] = std::to_string(optimizer->lr());
  }
  metadata["format"] = "tinytorch checkpoint 1";
  c.metadata = std::move(metadata);
  save_safetensors(path, c);
}

void save_checkpoint(const std::string& path, const Module& model, const Optimizer* optimizer,
                     std::map<std::string, std::string> metadata) {
  save_checkpoint(path, module_state(model), optimizer, std::move(metadata));
}

std::map<std::string, std::string> load_checkpoint(const std::string& path, const NamedTensors& state,
                                                   Optimizer* optimizer, bool strict) {
  const SafeTensors c = load_safetensors(path);
  NamedTensors targets = state;
  int64_t steps = 0;
  if (optimizer) {
    auto it = c.metadata.find("optimizer");
    if (it == c.metadata.end() || it->second != optimizer->type_name()) {
      throw DataError("'" + path + "': holds no " + optimizer->type_name() + " optimizer state" +
                      (it == c.metadata.end() ? "" : " (it has " + it->second + ")"));
    }
    for (auto& [name, t] : optimizer->state()) targets.emplace_back("optimizer." + name, t);
    auto steps_it = c.metadata.find("optimizer_steps");
    if (steps_it == c.metadata.end()) throw DataError("'" + path + "': optimizer state without optimizer_steps");
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(steps_it->second.c_str(), &end, 10);
    if (steps_it->second.empty() || *end != '\0' || errno == ERANGE || v < 0 || v > kMaxOptimizerSteps) {
      throw DataError("'" + path + "': optimizer_steps must be a count in [0, 2^53], got '" + steps_it->second + "'");
    }
    steps = v;
  }
  // Check everything first, so a mismatch leaves the model untouched.
  std::set<std::string> wanted;
  std::vector<std::string> missing, unexpected, duplicated;
  for (const auto& [name, t] : targets) {
    if (!wanted.insert(name).second) duplicated.push_back(name);
    const Tensor* saved = c.find(name);
    if (!saved) {
      missing.push_back(name);
    } else if (saved->shape() != t.shape()) {
      throw DataError("'" + path + "': tensor '" + name + "' has shape " + shape_to_string(saved->shape()) +
                      ", the model expects " + shape_to_string(t.shape()));
    }
  }
  if (!duplicated.empty()) {
    throw ArgumentError("load_checkpoint: the model names more than one tensor " + list_names(duplicated));
  }
  for (const auto& [name, t] : c.tensors) {
    // Without an optimizer the file's optimizer state is not wanted, and not unexpected either.
    if (!wanted.count(name) && (optimizer || name.compare(0, 10, "optimizer.") != 0)) unexpected.push_back(name);
  }
  if (strict && (!missing.empty() || !unexpected.empty())) {
    std::string why = "'" + path + "' does not match the model (load with strict=false to skip):";
    if (!missing.empty()) why += " missing " + list_names(missing) + ";";
    if (!unexpected.empty()) why += " unexpected " + list_names(unexpected) + ";";
    why.pop_back();
    throw DataError(why);
  }
  NoGradGuard no_grad;
  for (auto& [name, t] : targets) {
    if (const Tensor* saved = c.find(name)) t.copy_(*saved);
  }
  if (optimizer) optimizer->set_steps(steps);
  return c.metadata;
}

std::map<std::string, std::string> load_checkpoint(const std::string& path, Module& model, Optimizer* optimizer,
                                                   bool strict) {
  return load_checkpoint(path, module_state(model), optimizer, strict);
}

}  // namespace tinytorch
