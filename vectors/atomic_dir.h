// A directory written all at once: files go into DIR.tmp-XXXXXX beside DIR, are fsynced, and the
// directory is renamed to DIR only by commit(). If the writer throws, is destroyed uncommitted or the
// process gets SIGINT, SIGTERM or SIGHUP, the temporary directory is removed: DIR either does not
// exist or is complete.
#pragma once

#include <string>

namespace qv::vectors {

class AtomicDir {
 public:
  // Throws InputError (exit 2) when `final_dir` exists and is not an empty directory, unless `force`
  // (then it is replaced at commit).
  AtomicDir(const std::string& final_dir, bool force);
  ~AtomicDir();
  AtomicDir(const AtomicDir&) = delete;
  AtomicDir& operator=(const AtomicDir&) = delete;

  const std::string& temp_path() const { return temp_; }
  // Writes `bytes` to temp/rel (creating parent directories) and fsyncs it.
  void write_file(const std::string& rel, const std::string& bytes);
  // fsyncs the directories, renames temp to the final name (replacing an old one under --force) and
  // fsyncs the parent.
  void commit();

 private:
  std::string final_, temp_;
  bool force_ = false, committed_ = false;
};

}  // namespace qv::vectors
