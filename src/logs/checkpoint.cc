#include "logs/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

namespace pillion::logs {
namespace {

[[noreturn]] void fail(const std::string& what, const std::string& path) {
  throw std::runtime_error("checkpoint " + path + ": " + what + ": " + std::strerror(errno));
}

}  // namespace

std::vector<FileState> CheckpointStore::load() const {
  std::vector<FileState> states;
  std::ifstream in(path_);
  if (!in) {
    if (errno == ENOENT) {
      return states;
    }
    fail("cannot open", path_);
  }
  std::stringstream text;
  text << in.rdbuf();
  const auto json = nlohmann::json::parse(text.str(), nullptr, false);
  if (json.is_discarded() || !json.is_object() || !json.contains("files") ||
      !json["files"].is_array()) {
    throw std::runtime_error("checkpoint " + path_ + ": not a checkpoint file (bad JSON)");
  }
  for (const auto& f : json["files"]) {
    FileState s;
    s.dev = f.value("dev", uint64_t{0});
    s.ino = f.value("ino", uint64_t{0});
    s.has_fingerprint = f.contains("fingerprint");
    s.fingerprint = f.value("fingerprint", uint64_t{0});
    s.generation = f.value("generation", uint64_t{0});
    s.offset = f.value("offset", uint64_t{0});
    s.path = f.value("path", std::string{});
    states.push_back(std::move(s));
  }
  return states;
}

void CheckpointStore::save(const std::vector<FileState>& states) const {
  nlohmann::json files = nlohmann::json::array();
  for (const auto& s : states) {
    nlohmann::json f{{"dev", s.dev},
                     {"ino", s.ino},
                     {"generation", s.generation},
                     {"offset", s.offset},
                     {"path", s.path}};
    if (s.has_fingerprint) {
      f["fingerprint"] = s.fingerprint;
    }
    files.push_back(std::move(f));
  }
  const std::string text = nlohmann::json{{"version", 1}, {"files", files}}.dump(1) + "\n";
  const std::string tmp = path_ + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    fail("cannot create", tmp);
  }
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0) {
      ::close(fd);
      fail("cannot write", tmp);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    ::close(fd);
    fail("cannot fsync", tmp);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path_.c_str()) != 0) {
    fail("cannot rename", tmp);
  }
  // The rename itself is only durable once the directory is synced.
  std::string dir = std::filesystem::path(path_).parent_path().string();
  if (dir.empty()) {
    dir = ".";
  }
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace pillion::logs
