#include "observe/exposition.h"

#include <fmt/format.h>

#include <iterator>

namespace pillion::observe {

void append_label_value(std::string& out, std::string_view value) {
  for (char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
}

void append_help(std::string& out, std::string_view help) {
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

void Exposition::family(std::string_view name, std::string_view type, std::string_view help) {
  fmt::format_to(std::back_inserter(out_), "# HELP {} ", name);
  append_help(out_, help);
  fmt::format_to(std::back_inserter(out_), "\n# TYPE {} {}\n", name, type);
}

void Exposition::series(std::string_view name, std::string_view suffix,
                        std::span<const Label> labels, const Label* extra) {
  out_ += name;
  out_ += suffix;
  if (labels.empty() && extra == nullptr) {
    return;
  }
  out_ += '{';
  bool first = true;
  auto put = [&](const Label& label) {
    if (!first) {
      out_ += ',';
    }
    first = false;
    out_ += label.name;
    out_ += "=\"";
    append_label_value(out_, label.value);
    out_ += '"';
  };
  for (const auto& label : labels) {
    put(label);
  }
  if (extra != nullptr) {
    put(*extra);
  }
  out_ += '}';
}

void Exposition::sample(std::string_view name, std::span<const Label> labels, uint64_t value) {
  series(name, "", labels, nullptr);
  fmt::format_to(std::back_inserter(out_), " {}\n", value);
}

void Exposition::sample(std::string_view name, std::span<const Label> labels, double value) {
  series(name, "", labels, nullptr);
  fmt::format_to(std::back_inserter(out_), " {}\n", value);
}

void Exposition::histogram(std::string_view name, std::span<const Label> labels,
                           const HistogramSnapshot& histogram) {
  uint64_t cumulative = 0;
  for (size_t i = 0; i < kBuckets; ++i) {
    cumulative += histogram.counts[i];
    Label le{"le", i < kBucketLe.size() ? kBucketLe[i] : std::string_view("+Inf")};
    series(name, "_bucket", labels, &le);
    fmt::format_to(std::back_inserter(out_), " {}\n", cumulative);
  }
  series(name, "_sum", labels, nullptr);
  fmt::format_to(std::back_inserter(out_), " {}\n", static_cast<double>(histogram.sum_us) / 1e6);
  series(name, "_count", labels, nullptr);
  fmt::format_to(std::back_inserter(out_), " {}\n", cumulative);
}

}  // namespace pillion::observe
