#include "logs/doc_builder.h"

#include <algorithm>

#include "logs/json_text.h"

namespace pillion::logs {

void DocBuilder::begin() {
  start_ = out_.size();
  key_count_ = 0;
  out_ += '{';
}

void DocBuilder::rollback() {
  out_.resize(start_);
  begin();
}

void DocBuilder::end() {
  out_ += "}\n";
}

bool DocBuilder::has_key(std::string_view key) const {
  auto end = keys_.begin() + static_cast<std::ptrdiff_t>(key_count_);
  return std::find(keys_.begin(), end, key) != end;
}

bool DocBuilder::add_key(std::string_view key) {
  if (has_key(key)) {
    return false;
  }
  if (key_count_ < keys_.size()) {
    keys_[key_count_].assign(key);
  } else {
    keys_.emplace_back(key);
  }
  ++key_count_;
  if (out_.size() != start_ + 1) {
    out_ += ',';
  }
  append_json_string(out_, key);
  out_ += ':';
  return true;
}

bool DocBuilder::add_string(std::string_view key, std::string_view value) {
  if (!add_key(key)) {
    return false;
  }
  append_json_string(out_, value);
  return true;
}

bool DocBuilder::add_unescaped(std::string_view key, std::string_view quoted_body) {
  if (!add_key(key)) {
    return false;
  }
  append_json_unescaped(out_, quoted_body);
  return true;
}

bool DocBuilder::add_raw(std::string_view key, std::string_view json_value) {
  if (!add_key(key)) {
    return false;
  }
  out_ += json_value;
  return true;
}

bool DocBuilder::add_timestamp(std::string_view key, const Timestamp& ts) {
  if (!add_key(key)) {
    return false;
  }
  out_ += '"';
  append_rfc3339(out_, ts);
  out_ += '"';
  return true;
}

bool DocBuilder::add_bool(std::string_view key, bool value) {
  return add_raw(key, value ? "true" : "false");
}

bool DocBuilder::add_message(const std::vector<std::string_view>& parts, std::string_view tail) {
  if (parts.size() == 1 && tail.empty()) {
    return add_string("message", parts[0]);
  }
  std::string joined;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i > 0) {
      joined += ' ';
    }
    joined += parts[i];
  }
  if (!tail.empty()) {
    if (!joined.empty()) {
      joined += '\n';
    }
    joined += tail;
  }
  return add_string("message", joined);
}

}  // namespace pillion::logs
