#include "vectors/atomic_dir.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <vector>

#include "ir/error.h"

namespace qv::vectors {

namespace fs = std::filesystem;

namespace {

// The temporary directory a signal must remove (one AtomicDir at a time per process).
char g_temp[4096] = {0};
struct sigaction g_old[3];
const int kSignals[3] = {SIGINT, SIGTERM, SIGHUP};

void on_signal(int sig) {
  if (g_temp[0]) {
    // Only async-signal-safe calls. Not fork(): glibc's fork runs the pthread_atfork handlers
    // (LibTorch's and OpenMP's among them) and takes malloc's locks, which can deadlock when the signal
    // interrupted a thread holding one (the likely cause of a hung `AKilledRunLeavesNoDirectory`). The
    // raw system call only copies this thread, which does nothing but execve or _exit.
#ifdef SYS_fork
    const pid_t pid = static_cast<pid_t>(syscall(SYS_fork));
#else
    const pid_t pid = static_cast<pid_t>(syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0));
#endif
    if (pid == 0) {
      char rm[] = "/bin/rm";
      char rf[] = "-rf";
      char dd[] = "--";
      char* argv[] = {rm, rf, dd, g_temp, nullptr};
      char* envp[] = {nullptr};
      execve(rm, argv, envp);
      _exit(127);
    }
    if (pid > 0) {
      int status = 0;
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
    }
  }
  signal(sig, SIG_DFL);
  raise(sig);
}

void install(const std::string& temp) {
  if (temp.size() >= sizeof g_temp) return;
  std::memcpy(g_temp, temp.c_str(), temp.size() + 1);
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  for (int i = 0; i < 3; ++i) sigaction(kSignals[i], &sa, &g_old[i]);
}

void uninstall() {
  for (int i = 0; i < 3; ++i) sigaction(kSignals[i], &g_old[i], nullptr);
  g_temp[0] = 0;
}

void fsync_path(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("cannot open " + path + " to fsync: " + std::strerror(errno));
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) throw std::runtime_error("fsync " + path + ": " + std::strerror(errno));
}

bool non_empty_dir_or_file(const fs::path& p) {
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(p, ec))) return false;
  if (!fs::is_directory(p)) return true;
  return !fs::is_empty(p);
}

}  // namespace

AtomicDir::AtomicDir(const std::string& final_dir, bool force) : final_(final_dir), force_(force) {
  fs::path f(final_dir);
  while (!f.empty() && !f.has_filename()) f = f.parent_path();  // "out/" -> "out"
  if (f.empty()) throw InputError(final_dir, "", "not a usable directory name");
  final_ = f.string();
  if (non_empty_dir_or_file(f)) {
    if (!fs::is_directory(f)) throw InputError(final_, "", "exists and is not a directory");
    if (!force) throw InputError(final_, "", "exists and is not empty (pass --force to replace it)");
  }
  const fs::path parent = f.has_parent_path() ? f.parent_path() : fs::path(".");
  if (!fs::is_directory(parent)) throw InputError(final_, "", "parent directory " + parent.string() + " does not exist");
  std::string tmpl = final_ + ".tmp-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (!::mkdtemp(buf.data())) throw InputError(final_, "", std::string("cannot create a temporary directory beside it: ") + std::strerror(errno));
  temp_ = buf.data();
  install(temp_);
}

AtomicDir::~AtomicDir() {
  if (!committed_) {
    std::error_code ec;
    fs::remove_all(temp_, ec);
    uninstall();
  }
}

void AtomicDir::write_file(const std::string& rel, const std::string& bytes) {
  const fs::path p = fs::path(temp_) / rel;
  fs::create_directories(p.parent_path());
  const int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("cannot create " + p.string() + ": " + std::strerror(errno));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      ::close(fd);
      throw std::runtime_error("cannot write " + p.string() + ": " + std::strerror(err));
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) throw std::runtime_error("cannot fsync " + p.string());
}

void AtomicDir::commit() {
  std::vector<std::string> dirs;
  for (const auto& e : fs::recursive_directory_iterator(temp_))
    if (e.is_directory()) dirs.push_back(e.path().string());
  for (const std::string& d : dirs) fsync_path(d, true);
  fsync_path(temp_, true);
  const fs::path f(final_);
  std::string old;
  if (non_empty_dir_or_file(f)) {
    // --force: move the old directory aside first, then the new one in.
    std::string tmpl = final_ + ".old-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (!::mkdtemp(buf.data())) throw std::runtime_error("cannot create a directory beside " + final_);
    old = buf.data();
    if (::rename(final_.c_str(), old.c_str()) != 0) throw std::runtime_error("cannot move " + final_ + " aside: " + std::strerror(errno));
  }
  if (::rename(temp_.c_str(), final_.c_str()) != 0) {
    const int err = errno;
    if (!old.empty()) ::rename(old.c_str(), final_.c_str());
    throw std::runtime_error("cannot rename " + temp_ + " to " + final_ + ": " + std::strerror(err));
  }
  committed_ = true;
  uninstall();
  fsync_path(f.has_parent_path() ? f.parent_path().string() : ".", true);
  if (!old.empty()) {
    std::error_code ec;
    fs::remove_all(old, ec);
  }
}

}  // namespace qv::vectors
