// safetensors reading and writing, with a small strict JSON reader for its header.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "tinytorch/autograd.hpp"
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
      while (true) {
        j.keys.push_back(string());
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
        if (e == 'n') out += '\n';
        else if (e == 't') out += '\t';
        else if (e == '"' || e == '\\' || e == '/') out += e;
        else fail("unsupported escape");
      } else {
        out += c;
      }
    }
  }
  const std::string& s_;
  const std::string& path_;
  size_t i_ = 0;
};

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out + "\"";
}

[[noreturn]] void io_error(const std::string& what, const std::string& path) {
  throw std::runtime_error(what + " '" + path + "': " + std::strerror(errno));
}

void write_all(int fd, const char* data, size_t size, const std::string& path) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      io_error("cannot write", path);
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
}

}  // namespace

const Tensor* SafeTensors::find(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return &t;
  return nullptr;
}

void save_safetensors(const std::string& path, const SafeTensors& contents) {
  // Header: {"__metadata__": {...}, "name": {"dtype": "F32", "shape": [...], "data_offsets": [b, e]}, ...}
  std::ostringstream h;
  h << "{";
  bool first = true;
  if (!contents.metadata.empty()) {
    h << "\"__metadata__\":{";
    for (auto it = contents.metadata.begin(); it != contents.metadata.end(); ++it) {
      h << (it == contents.metadata.begin() ? "" : ",") << json_string(it->first) << ":" << json_string(it->second);
    }
    h << "}";
    first = false;
  }
  uint64_t offset = 0;
  for (const auto& [name, t] : contents.tensors) {
    const uint64_t bytes = static_cast<uint64_t>(t.numel()) * 4;
    h << (first ? "" : ",") << json_string(name) << ":{\"dtype\":\"F32\",\"shape\":[";
    for (size_t d = 0; d < t.shape().size(); ++d) h << (d ? "," : "") << t.shape()[d];
    h << "],\"data_offsets\":[" << offset << "," << offset + bytes << "]}";
    offset += bytes;
    first = false;
  }
  h << "}";
  std::string header = h.str();
  header.append((8 - header.size() % 8) % 8, ' ');  // pad so the data starts 8-byte aligned

  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) io_error("cannot create", tmp);
  try {
    uint8_t size[8];
    for (int i = 0; i < 8; ++i) size[i] = static_cast<uint8_t>(static_cast<uint64_t>(header.size()) >> (8 * i));
    write_all(fd, reinterpret_cast<const char*>(size), 8, tmp);
    write_all(fd, header.data(), header.size(), tmp);
    for (const auto& [name, t] : contents.tensors) {  // little-endian float32: this machine's own layout
      write_all(fd, reinterpret_cast<const char*>(t.data()), static_cast<size_t>(t.numel()) * 4, tmp);
    }
    if (::fsync(fd) != 0) io_error("cannot flush", tmp);
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  if (::close(fd) != 0) {
    ::unlink(tmp.c_str());
    io_error("cannot close", tmp);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    io_error("cannot replace", path);
  }
  // Make the rename itself durable.
  const size_t slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

SafeTensors load_safetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError("cannot open '" + path + "': " + std::strerror(errno));
  in.seekg(0, std::ios::end);
  const uint64_t file_size = static_cast<uint64_t>(in.tellg());
  in.seekg(0);
  uint8_t size_bytes[8];
  if (file_size < 8 || !in.read(reinterpret_cast<char*>(size_bytes), 8)) {
    throw DataError("'" + path + "': too short for a safetensors file (" + std::to_string(file_size) + " bytes)");
  }
  uint64_t header_size = 0;
  for (int i = 0; i < 8; ++i) header_size |= static_cast<uint64_t>(size_bytes[i]) << (8 * i);
  if (header_size > kMaxHeader || header_size > file_size - 8) {
    throw DataError("'" + path + "': header length " + std::to_string(header_size) + " does not fit the file (" +
                    std::to_string(file_size) + " bytes): truncated or not safetensors");
  }
  std::string text(header_size, '\0');
  if (!in.read(text.data(), static_cast<std::streamsize>(header_size))) throw DataError("'" + path + "': truncated header");
  const Json doc = JsonReader(text, path).document();
  if (doc.kind != Json::Kind::Object) throw DataError("'" + path + "': the header is not a JSON object");
  const uint64_t data_size = file_size - 8 - header_size;

  SafeTensors out;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (size_t member = 0; member < doc.keys.size(); ++member) {
    const std::string& name = doc.keys[member];
    const Json& entry = doc.values[member];
    if (name == "__metadata__") {
      for (size_t i = 0; i < entry.keys.size(); ++i) {
        if (entry.values[i].kind != Json::Kind::String) throw DataError("'" + path + "': metadata values must be strings");
        out.metadata[entry.keys[i]] = entry.values[i].string;
      }
      continue;
    }
    const Json* dtype = entry.get("dtype");
    const Json* shape = entry.get("shape");
    const Json* offsets = entry.get("data_offsets");
    if (entry.kind != Json::Kind::Object || !dtype || !shape || !offsets || shape->kind != Json::Kind::Array ||
        offsets->kind != Json::Kind::Array || offsets->array.size() != 2) {
      throw DataError("'" + path + "': tensor '" + name + "' needs dtype, shape and two data_offsets");
    }
    if (dtype->kind != Json::Kind::String || dtype->string != "F32") {
      throw DataError("'" + path + "': tensor '" + name + "' has dtype " + dtype->string + "; only F32 is supported");
    }
    Shape s;
    for (const Json& d : shape->array) {
      if (d.kind != Json::Kind::Number || d.number < 0) throw DataError("'" + path + "': tensor '" + name + "' has a bad shape");
      s.push_back(d.number);
    }
    int64_t numel;
    try {
      numel = checked_numel(s);
    } catch (const ShapeError&) {
      throw DataError("'" + path + "': tensor '" + name + "' has a shape too large to count");
    }
    const Json &b = offsets->array[0], &e = offsets->array[1];
    if (b.kind != Json::Kind::Number || e.kind != Json::Kind::Number || b.number < 0 || e.number < b.number ||
        static_cast<uint64_t>(e.number) > data_size || static_cast<uint64_t>(e.number - b.number) != static_cast<uint64_t>(numel) * 4) {
      throw DataError("'" + path + "': tensor '" + name + "' has data_offsets outside the " + std::to_string(data_size) +
                      " bytes of data or not matching its shape (truncated?)");
    }
    Tensor t = Tensor::empty(s);
    in.seekg(static_cast<std::streamoff>(8 + header_size + static_cast<uint64_t>(b.number)));
    if (numel > 0 && !in.read(reinterpret_cast<char*>(t.data()), numel * 4)) {
      throw DataError("'" + path + "': could not read the data of '" + name + "'");
    }
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
  if (at != data_size) throw DataError("'" + path + "': " + std::to_string(data_size - at) + " bytes after the last tensor");
  return out;
}

void save_checkpoint(const std::string& path, const Module& model, const Optimizer* optimizer,
                     std::map<std::string, std::string> metadata) {
  SafeTensors c;
  for (auto& p : model.named_parameters()) c.tensors.push_back(p);
  for (auto& b : model.named_buffers()) c.tensors.push_back(b);
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

std::map<std::string, std::string> load_checkpoint(const std::string& path, Module& model, Optimizer* optimizer) {
  const SafeTensors c = load_safetensors(path);
  std::vector<std::pair<std::string, Tensor>> targets = model.named_parameters();
  for (auto& b : model.named_buffers()) targets.push_back(b);
  if (optimizer) {
    auto it = c.metadata.find("optimizer");
    if (it == c.metadata.end() || it->second != optimizer->type_name()) {
      throw DataError("'" + path + "': holds no " + optimizer->type_name() + " optimizer state" +
                      (it == c.metadata.end() ? "" : " (it has " + it->second + ")"));
    }
    for (auto& [name, t] : optimizer->state()) targets.emplace_back("optimizer." + name, t);
  }
  // Check everything first, so a mismatch leaves the model untouched.
  for (const auto& [name, t] : targets) {
    const Tensor* saved = c.find(name);
    if (!saved) throw DataError("'" + path + "': has no tensor '" + name + "'");
    if (saved->shape() != t.shape()) {
      throw DataError("'" + path + "': tensor '" + name + "' has shape " + shape_to_string(saved->shape()) +
                      ", the model expects " + shape_to_string(t.shape()));
    }
  }
  NoGradGuard no_grad;
  for (auto& [name, t] : targets) t.copy_(*c.find(name));
  if (optimizer) {
    auto it = c.metadata.find("optimizer_steps");
    if (it != c.metadata.end()) {
      char* end = nullptr;
      const long long steps = std::strtoll(it->second.c_str(), &end, 10);
      if (*end != '\0' || steps < 0) throw DataError("'" + path + "': optimizer_steps is not a count: " + it->second);
      optimizer->set_steps(steps);
    }
  }
  return c.metadata;
}

}  // namespace tinytorch
