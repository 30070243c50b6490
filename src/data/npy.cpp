// NumPy .npy files (npy.hpp). The header is a Python dict literal; it is read strictly for the
// three keys numpy writes ('descr', 'fortran_order', 'shape') and nothing else.
#include "tinytorch/npy.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "tinytorch/errors.hpp"
#include "tinytorch/file_io.hpp"

namespace tinytorch {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr int64_t kMaxElements = int64_t{1} << 34;

[[noreturn]] void bad(const std::string& path, const std::string& what) {
  throw DataError("npy: '" + path + "' is not a valid .npy file: " + what);
}

// The value after 'key': in the header dict, up to the next top-level comma or the closing brace.
std::string field(const std::string& header, const std::string& key, const std::string& path) {
  const std::string quoted[] = {"'" + key + "'", "\"" + key + "\""};
  size_t at = std::string::npos;
  for (const auto& q : quoted) {
    if ((at = header.find(q)) != std::string::npos) {
      at += q.size();
      break;
    }
  }
  if (at == std::string::npos) bad(path, "its header has no '" + key + "'");
  at = header.find(':', at);
  if (at == std::string::npos) bad(path, "its header's '" + key + "' has no value");
  size_t end = at + 1;
  int depth = 0;
  for (; end < header.size(); ++end) {
    const char c = header[end];
    if (c == '(') ++depth;
    if (c == ')') --depth;
    if (depth == 0 && (c == ',' || c == '}')) break;
  }
  std::string value = header.substr(at + 1, end - at - 1);
  const size_t first = value.find_first_not_of(" \t"), last = value.find_last_not_of(" \t");
  return first == std::string::npos ? "" : value.substr(first, last - first + 1);
}

Shape parse_shape(const std::string& text, const std::string& path) {
  if (text.size() < 2 || text.front() != '(' || text.back() != ')') bad(path, "shape '" + text + "' is not a tuple");
  Shape shape;
  int64_t numel = 1;
  size_t i = 1;
  while (i < text.size() - 1) {
    while (i < text.size() - 1 && (text[i] == ' ' || text[i] == ',')) ++i;
    if (i >= text.size() - 1) break;
    int64_t d = 0;
    size_t digits = 0;
    for (; i < text.size() - 1 && text[i] >= '0' && text[i] <= '9'; ++i, ++digits) {
      if (d > (std::numeric_limits<int64_t>::max() - 9) / 10) bad(path, "a dim of shape " + text + " is too large");
      d = d * 10 + (text[i] - '0');
    }
    if (digits == 0) bad(path, "shape " + text + " holds something other than non-negative integers");
    if (d > 0 && numel > kMaxElements / d) bad(path, "shape " + text + " is too large");
    numel *= d;
    shape.push_back(d);
  }
  return shape;
}

template <class From, class To>
void convert(To* out, const char* data, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    From v;
    std::memcpy(&v, data + i * static_cast<int64_t>(sizeof(From)), sizeof(From));
    out[i] = static_cast<To>(v);
  }
}

}  // namespace

Tensor load_npy(const std::string& path) {
  check_path(path, "npy path");
  const std::string bytes = read_regular_file(path, uint64_t{1} << 40);
  if (bytes.size() < 10 || bytes.compare(0, 6, kMagic, 6) != 0) bad(path, "no \\x93NUMPY magic at its start");
  const int major = static_cast<unsigned char>(bytes[6]);
  size_t header_len = 0, start = 0;
  if (major == 1) {
    header_len = static_cast<unsigned char>(bytes[8]) | static_cast<size_t>(static_cast<unsigned char>(bytes[9])) << 8;
    start = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) bad(path, "its header length is cut off");
    for (int b = 0; b < 4; ++b) header_len |= static_cast<size_t>(static_cast<unsigned char>(bytes[8 + b])) << (8 * b);
    start = 12;
  } else {
    bad(path, "format version " + std::to_string(major) + " (expected 1, 2 or 3)");
  }
  if (header_len > bytes.size() - start) bad(path, "its header runs past the end of the file");
  const std::string header = bytes.substr(start, header_len);
  const std::string descr = field(header, "descr", path), order = field(header, "fortran_order", path);
  if (order != "False") bad(path, "fortran_order is " + order + "; save a C-order array (np.ascontiguousarray)");
  const Shape shape = parse_shape(field(header, "shape", path), path);
  int64_t n = 1, span = 1;  // span: the strides' product, which counts a 0 dim as 1 (it must fit too)
  for (int64_t d : shape) {
    if (__builtin_mul_overflow(span, std::max<int64_t>(d, 1), &span) || __builtin_mul_overflow(n, d, &n))
      bad(path, "its shape " + shape_to_string(shape) + " has more elements than an int64 can count");
  }
  const char* data = bytes.data() + start + header_len;
  const auto available = static_cast<int64_t>(bytes.size() - start - header_len);
  struct Kind {
    const char* descr;
    int64_t size;
  };
  static const Kind kKinds[] = {{"'<f4'", 4}, {"'<f8'", 8}, {"'<i8'", 8}, {"'<i4'", 4}, {"'|b1'", 1}};
  for (const Kind& k : kKinds) {
    if (descr != k.descr) continue;
    if (available != n * k.size) {
      bad(path, "it holds " + std::to_string(available) + " data bytes, its shape needs " + std::to_string(n * k.size));
    }
    if (descr == "'<f4'" || descr == "'<f8'") {
      Tensor t = Tensor::empty(shape);
      descr == "'<f4'" ? convert<float>(t.data_to_write(), data, n) : convert<double>(t.data_to_write(), data, n);
      return t;
    }
    if (descr == "'|b1'") {
      Tensor t = Tensor::empty(shape, DType::Bool);
      convert<uint8_t>(t.ptr_to_write<bool>(), data, n);
      return t;
    }
    Tensor t = Tensor::empty(shape, DType::Int64);
    descr == "'<i8'" ? convert<int64_t>(t.ptr_to_write<int64_t>(), data, n)
                     : convert<int32_t>(t.ptr_to_write<int64_t>(), data, n);
    return t;
  }
  bad(path, "dtype " + descr + " (expected '<f4', '<f8', '<i8', '<i4' or '|b1')");
}

void save_npy(const std::string& path, const Tensor& tensor) {
  const Tensor t = tensor.contiguous();
  const char* descr = t.dtype() == DType::Float32 ? "<f4" : t.dtype() == DType::Int64 ? "<i8" : "|b1";
  std::string shape = "(";
  for (size_t d = 0; d < t.shape().size(); ++d)
    shape += std::to_string(t.shape()[d]) + (t.shape().size() == 1 ? "," : d + 1 < t.shape().size() ? ", " : "");
  shape += ")";
  std::string header = "{'descr': '" + std::string(descr) + "', 'fortran_order': False, 'shape': " + shape + ", }";
  const size_t unpadded = 10 + header.size() + 1;  // the header ends with a newline; data 64-byte aligned
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  if (header.size() > 65535)
    throw ArgumentError("save_npy: a " + std::to_string(t.dim()) + "-D shape is too long for a version 1.0 header");
  std::string out(kMagic, 6);
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(header.size() & 0xFF);
  out += static_cast<char>(header.size() >> 8);
  out += header;
  const int64_t item = t.dtype() == DType::Bool ? 1 : t.dtype() == DType::Int64 ? 8 : 4;
  if (t.numel() > 0) out.append(static_cast<const char*>(t.read_raw_data()), static_cast<size_t>(t.numel() * item));
  write_file_atomic(path, out);
}

}  // namespace tinytorch
