#include "logs/config.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace pillion::logs {
namespace {

std::string write(const std::string& text) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("pillion-logs-config-" + std::to_string(::getpid()) + ".yaml");
  std::ofstream(path) << text;
  return path.string();
}

TEST(Config, FullFile) {
  const Config c = load_config(write(R"yaml(
input: { paths: ["/var/log/app/*.log"], read_from: end, rotate_wait: 2s }
parser: { format: regex, regex: "(?<a>.)", multiline: indent, max_line_bytes: 4096 }
checkpoint: { path: /tmp/cp, interval: 500ms }
enrich: { kubernetes: false, fields: { team: payments } }
output:
  type: elasticsearch
  url: https://es:9200
  gzip: true
  retry: { initial_backoff: 50ms, max_backoff: 5s, max_attempts: 3 }
metrics: { address: "127.0.0.1:2021" }
)yaml"));
  EXPECT_EQ(c.input.paths, std::vector<std::string>{"/var/log/app/*.log"});
  EXPECT_TRUE(c.input.read_from_end);
  EXPECT_EQ(c.input.rotate_wait, Millis(2000));
  EXPECT_EQ(c.parser.format, Format::kRegex);
  EXPECT_EQ(c.parser.multiline, Multiline::kIndent);
  EXPECT_EQ(c.checkpoint.interval, Millis(500));
  EXPECT_EQ(c.enrich.fields.at("team"), "payments");
  EXPECT_EQ(c.output.kind, OutputKind::kElasticsearch);
  EXPECT_TRUE(c.output.gzip);
  EXPECT_EQ(c.output.retry.max_attempts, 3u);
  EXPECT_EQ(c.metrics_address, "127.0.0.1:2021");
  EXPECT_NO_THROW(validate(c));
}

TEST(Config, UnknownKeyNamesKeyAndLine) {
  try {
    load_config(write("input:\n  paths: [a]\n  colour: blue\n"));
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(":3:3: unknown key 'input.colour'"), std::string::npos)
        << e.what();
  }
}

TEST(Config, BadDurationAndCrossFieldRules) {
  EXPECT_THROW(load_config(write("checkpoint: { interval: soon }\n")), ConfigError);
  Config c;
  EXPECT_THROW(validate(c), ConfigError);  // no path
  c.input.paths = {"a"};
  c.output.kind = OutputKind::kFile;
  EXPECT_THROW(validate(c), ConfigError);  // file output without a path
  c.output.kind = OutputKind::kElasticsearch;
  c.output.url = "es:9200";
  EXPECT_THROW(validate(c), ConfigError);  // no scheme
}

}  // namespace
}  // namespace pillion::logs
