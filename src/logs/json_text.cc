#include "logs/json_text.h"

#include <cstdint>
#include <cstring>

namespace pillion::logs {
namespace {

constexpr char kHex[] = "0123456789abcdef";

// Length of the valid UTF-8 sequence starting at text[i], or 0 when it is invalid.
size_t utf8_length(std::string_view text, size_t i) {
  const auto b0 = static_cast<uint8_t>(text[i]);
  size_t n = 0;
  uint32_t min = 0;
  uint32_t cp = 0;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    n = 2, cp = b0 & 0x1F, min = 0x80;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    n = 3, cp = b0 & 0x0F, min = 0x800;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    n = 4, cp = b0 & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (i + n > text.size()) {
    return 0;
  }
  for (size_t k = 1; k < n; ++k) {
    const auto b = static_cast<uint8_t>(text[i + k]);
    if ((b & 0xC0) != 0x80) {
      return 0;
    }
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
    return 0;
  }
  return n;
}

// Characters that can be copied as they are: ASCII from 0x20 except '"' and '\'.
constexpr bool plain(uint8_t c) {
  return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

// Index of the first non-plain character at or after i, eight bytes at a time (SWAR): this
// scan runs over every byte of every record.
size_t plain_run(std::string_view text, size_t i) {
  constexpr uint64_t kOnes = 0x0101010101010101ull;
  constexpr uint64_t kHigh = 0x8080808080808080ull;
  auto has_zero = [](uint64_t v) { return (v - kOnes) & ~v & kHigh; };
  while (i + 8 <= text.size()) {
    uint64_t w;
    std::memcpy(&w, text.data() + i, 8);
    const uint64_t special = (w & kHigh) | ((w - 0x20 * kOnes) & ~w & kHigh) |
                             has_zero(w ^ ('"' * kOnes)) | has_zero(w ^ ('\\' * kOnes));
    if (special != 0) {
      break;
    }
    i += 8;
  }
  while (i < text.size() && plain(static_cast<uint8_t>(text[i]))) {
    ++i;
  }
  return i;
}

void append_escaped_char(std::string& out, std::string_view text, size_t& i) {
  const auto c = static_cast<uint8_t>(text[i]);
  switch (c) {
    case '"':
      out += "\\\"";
      break;
    case '\\':
      out += "\\\\";
      break;
    case '\n':
      out += "\\n";
      break;
    case '\r':
      out += "\\r";
      break;
    case '\t':
      out += "\\t";
      break;
    default:
      if (c < 0x20 || c == 0x7F) {
        const char esc[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
        out.append(esc, sizeof esc);
      } else if (c >= 0x80) {
        const size_t n = utf8_length(text, i);
        if (n == 0) {
          out += "\\ufffd";
        } else {
          out.append(text.data() + i, n);
          i += n - 1;
        }
      } else {
        out += static_cast<char>(c);
      }
  }
}

}  // namespace

void append_json_string(std::string& out, std::string_view text) {
  out.reserve(out.size() + text.size() + 2);
  out += '"';
  size_t i = 0;
  while (i < text.size()) {
    const size_t run = plain_run(text, i);
    out.append(text.data() + i, run - i);
    i = run;
    if (i < text.size()) {
      append_escaped_char(out, text, i);
      ++i;
    }
  }
  out += '"';
}

void append_json_unescaped(std::string& out, std::string_view body) {
  out += '"';
  size_t i = 0;
  while (i < body.size()) {
    const size_t run = plain_run(body, i);
    out.append(body.data() + i, run - i);
    i = run;
    if (i >= body.size()) {
      break;
    }
    if (body[i] == '\\' && i + 1 < body.size() && (body[i + 1] == '"' || body[i + 1] == '\\')) {
      out += body[i + 1] == '"' ? "\\\"" : "\\\\";
      i += 2;
      continue;
    }
    append_escaped_char(out, body, i);
    ++i;
  }
  out += '"';
}

}  // namespace pillion::logs
