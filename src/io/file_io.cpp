// AtomicFile and the regular-file checks of the readers (include/tinytorch/file_io.hpp).
#include "tinytorch/file_io.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstring>

#include "tinytorch/errors.hpp"

namespace tinytorch {
namespace {

[[noreturn]] void io_error(const std::string& what, const std::string& path, int error) {
  throw IOError(what + " '" + path + "': " + std::strerror(error));
}

std::string dirname_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string basename_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

const char* file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

// Follows symlinks by hand (a dangling link's target is still a valid destination, which
// realpath would refuse); gives up after 40 links, as the kernel does.
std::string follow_symlinks(const std::string& path) {
  std::string at = path;
  for (int hops = 0; hops < 40; ++hops) {
    struct stat st;
    if (::lstat(at.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) return at;
    char target[PATH_MAX];
    const ssize_t n = ::readlink(at.c_str(), target, sizeof target - 1);
    if (n < 0) io_error("cannot read the symlink", at, errno);
    target[n] = '\0';
    at = target[0] == '/' ? std::string(target) : dirname_of(at) + "/" + target;
  }
  throw IOError("cannot write '" + path + "': too many levels of symbolic links");
}

// Temporaries are ".NAME.tmp-PID-N" beside the destination. One left by a process that was
// killed mid-write (its PID no longer runs) is removed by the next writer of the same file.
std::string temp_prefix(const std::string& destination) {
  std::string prefix = ".";
  prefix += basename_of(destination);
  prefix += ".tmp-";
  return prefix;
}

void remove_stale_temporaries(const std::string& destination) {
  const std::string dir = dirname_of(destination), prefix = temp_prefix(destination);
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    const long pid = std::strtol(name.c_str() + prefix.size(), nullptr, 10);
    if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) ::unlink((dir + "/" + name).c_str());
  }
  ::closedir(d);
}

}  // namespace

void check_path(const std::string& path, const char* what) {
  if (path.empty()) throw ArgumentError(std::string(what) + ": the path is empty");
  if (path.find('\0') != std::string::npos) {
    throw ArgumentError(std::string(what) + ": the path '" + path.substr(0, path.find('\0')) + "...' holds a NUL byte");
  }
}

AtomicFile::AtomicFile(const std::string& path) : path_(path) {
  check_path(path, "write");
  destination_ = follow_symlinks(path);
  struct stat st;
  const bool exists = ::stat(destination_.c_str(), &st) == 0;
  if (exists && !S_ISREG(st.st_mode)) {
    throw ArgumentError("cannot write '" + path + "': it exists and is " + file_kind(st.st_mode) +
                        ", not a regular file");
  }
  remove_stale_temporaries(destination_);
  static std::atomic<uint64_t> counter{0};
  temp_ = dirname_of(destination_) + "/" + temp_prefix(destination_) + std::to_string(::getpid()) + "-" +
          std::to_string(counter++);
  // A new file gets 0666 less the umask, as any tool's; a replaced one keeps its mode.
  fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, exists ? 0600 : 0666);
  if (fd_ < 0) io_error("cannot write", path, errno);
  if (exists && ::fchmod(fd_, st.st_mode & 07777) != 0) {
    const int error = errno;
    ::close(fd_);
    fd_ = -1;
    ::unlink(temp_.c_str());
    io_error("cannot write", path, error);
  }
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(temp_.c_str());
  }
}

void AtomicFile::write(const void* data, size_t size) {
  if (fd_ < 0) throw IOError("cannot write '" + path_ + "': the file was already committed");
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd_, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      io_error("cannot write", path_, errno);
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
}

void AtomicFile::commit() {
  if (fd_ < 0) throw IOError("cannot write '" + path_ + "': the file was already committed");
  if (::fsync(fd_) != 0) io_error("cannot write", path_, errno);
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) {
    const int error = errno;
    ::unlink(temp_.c_str());
    io_error("cannot write", path_, error);
  }
  if (::rename(temp_.c_str(), destination_.c_str()) != 0) {
    const int error = errno;
    ::unlink(temp_.c_str());
    io_error("cannot replace", path_, error);
  }
  // Make the rename itself durable.
  const int dfd = ::open(dirname_of(destination_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

void write_file_atomic(const std::string& path, std::string_view contents) {
  AtomicFile file(path);
  file.write(contents);
  file.commit();
}

int open_regular_file(const std::string& path, uint64_t max_bytes, uint64_t* size) {
  check_path(path, "read");
  // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused just below.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) throw DataError("cannot open '" + path + "': " + std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int error = errno;
    ::close(fd);
    throw DataError("cannot read '" + path + "': " + std::strerror(error));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw DataError("cannot read '" + path + "': it is " + file_kind(st.st_mode) + ", not a regular file");
  }
  const uint64_t bytes = static_cast<uint64_t>(st.st_size);
  if (bytes > max_bytes) {
    ::close(fd);
    throw DataError("cannot read '" + path + "': it holds " + std::to_string(bytes) + " bytes, more than the " +
                    std::to_string(max_bytes) + " accepted here");
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  if (size) *size = bytes;
  return fd;
}

std::string read_regular_file(const std::string& path, uint64_t max_bytes) {
  uint64_t size = 0;
  const int fd = open_regular_file(path, max_bytes, &size);
  std::string out(size, '\0');
  size_t at = 0;
  while (at < out.size()) {
    const ssize_t n = ::read(fd, out.data() + at, out.size() - at);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int error = n < 0 ? errno : 0;
      ::close(fd);
      if (n == 0) throw DataError("cannot read '" + path + "': it shrank while being read");
      throw DataError("cannot read '" + path + "': " + std::strerror(error));
    }
    at += static_cast<size_t>(n);
  }
  ::close(fd);
  return out;
}

}  // namespace tinytorch
