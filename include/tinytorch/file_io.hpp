// Files: the one writer behind every file tinytorch writes (checkpoints, metrics, plots, JSON),
// and the checks every reader makes before it reads a byte.
//
// Writing is atomic: the bytes go to a temporary file in the destination's directory, which is
// flushed, fsync'ed, closed and renamed over the destination, and the directory is fsync'ed. A
// failure at any step (a full disk, a kill) leaves the previous file as it was, removes the
// temporary and throws IOError naming the path and the reason. A destination that exists and is
// not a regular file (a directory, a device, a FIFO) is refused with an ArgumentError; a symlink
// is followed and its target replaced, keeping the link.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace tinytorch {

class AtomicFile {
 public:
  explicit AtomicFile(const std::string& path);  // creates the temporary file
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile();  // without commit(): removes the temporary, the destination untouched

  void write(const void* data, size_t size);
  void write(std::string_view text) { write(text.data(), text.size()); }
  void commit();  // flush, fsync, rename over the destination, fsync the directory
  const std::string& path() const { return path_; }

 private:
  std::string path_;         // as the caller gave it (for messages)
  std::string destination_;  // with symlinks followed
  std::string temp_;
  int fd_ = -1;
};

// The whole of `contents` as the file at `path`, atomically (see AtomicFile).
void write_file_atomic(const std::string& path, std::string_view contents);

// Refuses an empty path or one holding a NUL byte (ArgumentError naming `what`).
void check_path(const std::string& path, const char* what);

// Opens `path` for reading if it is a regular file of at most `max_bytes` bytes, without
// blocking on a FIFO or reading from a device. Returns the descriptor (the caller closes it) and
// its size. DataError naming the file otherwise.
int open_regular_file(const std::string& path, uint64_t max_bytes, uint64_t* size);
// The whole file, under the same checks.
std::string read_regular_file(const std::string& path, uint64_t max_bytes);

}  // namespace tinytorch
