#pragma once
// Writes the Prometheus text exposition format 0.0.4: HELP/TYPE per family, samples with
// escaped label values, histograms as cumulative _bucket{le} plus _sum and _count.
#include <span>
#include <string>
#include <string_view>

#include "observe/histogram.h"

namespace pillion::observe {

struct Label {
  std::string_view name;
  std::string_view value;
};

// Label values escape backslash, double quote and newline; HELP text backslash and newline.
void append_label_value(std::string& out, std::string_view value);
void append_help(std::string& out, std::string_view help);

class Exposition {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help);
  void sample(std::string_view name, std::span<const Label> labels, uint64_t value);
  void sample(std::string_view name, std::span<const Label> labels, double value);
  void sample(std::string_view name, uint64_t value) { sample(name, {}, value); }
  // `name` is the family: writes name_bucket (with `le` after `labels`), name_sum (seconds) and
  // name_count.
  void histogram(std::string_view name, std::span<const Label> labels,
                 const HistogramSnapshot& histogram);

  const std::string& text() const { return out_; }
  std::string take() { return std::move(out_); }

 private:
  void series(std::string_view name, std::string_view suffix, std::span<const Label> labels,
              const Label* extra);

  std::string out_;
};

}  // namespace pillion::observe
