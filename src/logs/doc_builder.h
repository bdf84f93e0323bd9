#pragma once
// Builds one JSON object per record directly into an output buffer, refusing a key that was
// already written (Elasticsearch rejects documents with duplicate keys).
#include <string>
#include <string_view>
#include <vector>

#include "logs/timestamp.h"

namespace pillion::logs {

class DocBuilder {
 public:
  explicit DocBuilder(std::string& out) : out_(out) {}

  void begin();
  // Drops everything written since begin() (a parser found the line does not match).
  void rollback();
  void end();  // closes the object and adds '\n'

  bool has_key(std::string_view key) const;
  // Each add_* writes nothing and returns false when the key was already written. The key's
  // bytes must stay valid until end().
  bool add_string(std::string_view key, std::string_view value);
  bool add_unescaped(std::string_view key, std::string_view quoted_body);
  bool add_raw(std::string_view key, std::string_view json_value);
  bool add_timestamp(std::string_view key, const Timestamp& ts);
  bool add_bool(std::string_view key, bool value);
  // Writes "message": the parts joined by single spaces, then "\n" + tail when tail is not empty.
  bool add_message(const std::vector<std::string_view>& parts, std::string_view tail);

  std::string& out() { return out_; }

 private:
  bool add_key(std::string_view key);

  std::string& out_;
  size_t start_ = 0;
  // Copies, not views: a parser's keys may live in a temporary (nlohmann's object) that is gone
  // before the pipeline adds its own fields. Slots are reused across records (no allocation for
  // short keys once warm).
  std::vector<std::string> keys_;
  size_t key_count_ = 0;
};

}  // namespace pillion::logs
