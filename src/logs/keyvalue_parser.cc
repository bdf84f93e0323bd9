#include "logs/keyvalue_parser.h"

namespace pillion::logs {
namespace {

bool key_char(char c) {
  return c != ' ' && c != '=' && c != '"' && c != '\t';
}

bool level_word(std::string_view word) {
  if (word.empty() || word.size() > 9) {
    return false;
  }
  for (char c : word) {
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'))) {
      return false;
    }
  }
  return true;
}

}  // namespace

bool KeyValueParser::parse(std::string_view record, const Timestamp&, DocBuilder& doc) {
  std::string_view line;
  std::string_view rest;
  split_first_line(record, line, rest);
  size_t pos = cached_raw_.size();
  if (pos != 0 && line.size() > pos && (line[pos] == ' ' || line[pos] == '\t') &&
      line.starts_with(cached_raw_)) {
    doc.add_raw("@timestamp", cached_json_);
  } else {
    Timestamp ts;
    pos = time_.parse(line, ts);
    if (pos == 0) {
      return false;
    }
    cached_raw_.clear();
    if (time_.prefix_cacheable() && pos <= 64) {
      cached_raw_.assign(line.substr(0, pos));
      cached_json_ = "\"";
      append_rfc3339(cached_json_, ts);
      cached_json_ += '"';
    }
    doc.add_timestamp("@timestamp", ts);
  }
  words_.clear();
  bool first_word = true;
  const size_t n = line.size();
  while (true) {
    while (pos < n && (line[pos] == ' ' || line[pos] == '\t')) {
      ++pos;
    }
    if (pos >= n) {
      break;
    }
    const size_t start = pos;
    size_t k = pos;
    while (k < n && key_char(line[k])) {
      ++k;
    }
    if (k > start && k < n && line[k] == '=') {
      const std::string_view key = line.substr(start, k - start);
      pos = k + 1;
      if (pos < n && line[pos] == '"') {
        // Quoted value: up to the next unescaped quote, or the end of the line if unterminated.
        const size_t body = ++pos;
        while (pos < n && line[pos] != '"') {
          pos += line[pos] == '\\' && pos + 1 < n ? 2 : 1;
        }
        doc.add_unescaped(key, line.substr(body, (pos < n ? pos : n) - body));
        if (pos < n) {
          ++pos;
        }
      } else {
        const size_t value = pos;
        while (pos < n && line[pos] != ' ' && line[pos] != '\t') {
          ++pos;
        }
        doc.add_string(key, line.substr(value, pos - value));
      }
      first_word = false;
      continue;
    }
    while (pos < n && line[pos] != ' ' && line[pos] != '\t') {
      ++pos;
    }
    std::string_view word = line.substr(start, pos - start);
    if (first_word) {
      first_word = false;
      std::string_view bare = word;
      if (bare.size() > 2 && bare.front() == '[' && bare.back() == ']') {
        bare = bare.substr(1, bare.size() - 2);
      }
      if (level_word(bare)) {
        doc.add_string("level", bare);
        continue;
      }
    }
    words_.push_back(word);
  }
  if (!words_.empty() || !rest.empty()) {
    doc.add_message(words_, rest);
  }
  return true;
}

}  // namespace pillion::logs
