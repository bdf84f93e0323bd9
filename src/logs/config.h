#pragma once
// Configuration of `pillion logs`: plain data with defaults, built from YAML (load_config) and
// overridden by command-line flags. Every field is documented in docs/logs.md.
#include <chrono>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace pillion::logs {

using Millis = std::chrono::milliseconds;

enum class Format { kKeyValue, kJson, kRegex };
enum class OutputKind { kStdout, kFile, kElasticsearch };
enum class Multiline { kNone, kIndent };

struct ParserConfig {
  Format format = Format::kKeyValue;
  std::string regex;  // kRegex: named groups become fields
  std::string time_layout = "%Y-%m-%d %H:%M:%S";
  std::string time_zone = "UTC";
  std::string time_key = "time";  // json/regex field holding the timestamp
  Multiline multiline = Multiline::kNone;
  Millis multiline_timeout{1000};     // a record at EOF waits this long for more lines
  size_t max_line_bytes = 16 * 1024;  // longer records are truncated and flagged
};

struct InputConfig {
  std::vector<std::string> paths;  // globs
  bool read_from_end = false;      // for files found at the first start only
  Millis poll_interval{100};       // how often open files are checked for data
  Millis scan_interval{1000};      // how often the globs are expanded again
  Millis rotate_wait{5000};        // a rotated file stays open this long after EOF
};

struct CheckpointConfig {
  std::string path;       // empty: no persistence (start over each run)
  Millis interval{1000};  // acknowledged offsets are fsync'ed this often
};

struct EnrichConfig {
  bool kubernetes = true;                     // POD_NAME, POD_NAMESPACE, CONTAINER_NAME, NODE_NAME
  std::map<std::string, std::string> fields;  // static fields added to every record
};

struct RetryConfig {
  Millis initial_backoff{100};
  Millis max_backoff{10000};
  uint64_t max_attempts = 0;  // 0: retry forever (nothing is dropped)
};

struct OutputConfig {
  OutputKind kind = OutputKind::kStdout;
  std::string path;    // kFile
  bool fsync = false;  // kFile: fdatasync before acknowledging
  std::string url;     // kElasticsearch: http(s)://host:port
  std::string index = "logs";
  std::string action = "index";  // or "create" (data streams); both idempotent by _id
  std::string username;
  std::string password;
  std::string ca_file;
  bool tls_insecure = false;
  bool gzip = false;
  size_t batch_max_bytes = 4 * 1024 * 1024;
  size_t batch_max_records = 10000;
  Millis batch_interval{1000};  // a non-full batch is sent after this long
  Millis timeout{30000};        // per HTTP request
  RetryConfig retry;
  std::string dead_letter_path;  // items the sink rejects for good (4xx)
};

struct Config {
  InputConfig input;
  ParserConfig parser;
  CheckpointConfig checkpoint;
  EnrichConfig enrich;
  OutputConfig output;
  std::string metrics_address;  // host:port; empty: no endpoint
  bool exit_at_eof = false;     // read what is there, ship it, exit (batch jobs)
};

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Reads a YAML file; throws ConfigError naming file:line:col and the key on any problem,
// including unknown keys.
Config load_config(const std::string& file);
// Checks cross-field rules (e.g. a file output needs a path); throws ConfigError.
void validate(const Config& config);

Format parse_format(const std::string& name);      // throws ConfigError
OutputKind parse_output(const std::string& name);  // throws ConfigError

}  // namespace pillion::logs
