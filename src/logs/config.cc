#include "logs/config.h"

#include <yaml-cpp/yaml.h>

#include <set>

#include "core/duration.h"

namespace pillion::logs {
namespace {

class Reader {
 public:
  explicit Reader(std::string file) : file_(std::move(file)) {}

  [[noreturn]] void fail(const YAML::Node& node, const std::string& what) const {
    const auto mark = node.Mark();
    throw ConfigError(file_ + ":" + std::to_string(mark.line + 1) + ":" +
                      std::to_string(mark.column + 1) + ": " + what);
  }

  // Rejects keys outside `allowed`, naming the key and where it is.
  void only(const YAML::Node& map, const std::string& where, std::set<std::string> allowed) const {
    if (!map.IsMap()) {
      fail(map, where + " must be a mapping");
    }
    for (const auto& kv : map) {
      const auto key = kv.first.as<std::string>();
      if (!allowed.contains(key)) {
        fail(kv.first, "unknown key '" + where + "." + key + "'");
      }
    }
  }

  template <typename T>
  void get(const YAML::Node& map, const char* key, T& out) const {
    if (const auto node = map[key]) {
      try {
        out = node.as<T>();
      } catch (const YAML::Exception&) {
        fail(node, std::string("bad value for '") + key + "'");
      }
    }
  }

  void duration(const YAML::Node& map, const char* key, Millis& out) const {
    if (const auto node = map[key]) {
      const auto d = core::parse_duration(node.as<std::string>());
      if (!d) {
        fail(node, std::string("bad duration for '") + key + "' (want e.g. 250ms, 2s, 1m)");
      }
      out = std::chrono::duration_cast<Millis>(*d);
    }
  }

 private:
  std::string file_;
};

}  // namespace

Format parse_format(const std::string& name) {
  if (name == "keyvalue" || name == "kv") {
    return Format::kKeyValue;
  }
  if (name == "json") {
    return Format::kJson;
  }
  if (name == "regex") {
    return Format::kRegex;
  }
  throw ConfigError("unknown format '" + name + "' (want keyvalue, json or regex)");
}

OutputKind parse_output(const std::string& name) {
  if (name == "stdout") {
    return OutputKind::kStdout;
  }
  if (name == "file") {
    return OutputKind::kFile;
  }
  if (name == "elasticsearch" || name == "opensearch" || name == "es") {
    return OutputKind::kElasticsearch;
  }
  throw ConfigError("unknown output '" + name + "' (want stdout, file or elasticsearch)");
}

Config load_config(const std::string& file) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(file);
  } catch (const YAML::BadFile&) {
    throw ConfigError(file + ": cannot read the file");
  } catch (const YAML::ParserException& e) {
    throw ConfigError(file + ":" + std::to_string(e.mark.line + 1) + ":" +
                      std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
  Config c;
  const Reader r(file);
  if (!root.IsMap()) {
    r.fail(root, "the config must be a mapping");
  }
  r.only(root, "logs",
         {"input", "parser", "checkpoint", "enrich", "output", "metrics", "exit_at_eof"});
  r.get(root, "exit_at_eof", c.exit_at_eof);
  if (const auto in = root["input"]) {
    r.only(in, "input",
           {"paths", "path", "read_from", "poll_interval", "scan_interval", "rotate_wait"});
    if (const auto paths = in["paths"]) {
      r.get(in, "paths", c.input.paths);
    }
    if (const auto path = in["path"]) {
      c.input.paths.push_back(path.as<std::string>());
    }
    if (const auto from = in["read_from"]) {
      const auto v = from.as<std::string>();
      if (v != "beginning" && v != "end") {
        r.fail(from, "read_from must be 'beginning' or 'end'");
      }
      c.input.read_from_end = v == "end";
    }
    r.duration(in, "poll_interval", c.input.poll_interval);
    r.duration(in, "scan_interval", c.input.scan_interval);
    r.duration(in, "rotate_wait", c.input.rotate_wait);
  }
  if (const auto p = root["parser"]) {
    r.only(p, "parser",
           {"format", "regex", "time_layout", "time_zone", "time_key", "multiline",
            "multiline_timeout", "max_line_bytes"});
    if (const auto f = p["format"]) {
      try {
        c.parser.format = parse_format(f.as<std::string>());
      } catch (const ConfigError& e) {
        r.fail(f, e.what());
      }
    }
    r.get(p, "regex", c.parser.regex);
    r.get(p, "time_layout", c.parser.time_layout);
    r.get(p, "time_zone", c.parser.time_zone);
    r.get(p, "time_key", c.parser.time_key);
    if (const auto m = p["multiline"]) {
      const auto v = m.as<std::string>();
      if (v != "none" && v != "indent") {
        r.fail(m, "multiline must be 'none' or 'indent'");
      }
      c.parser.multiline = v == "indent" ? Multiline::kIndent : Multiline::kNone;
    }
    r.duration(p, "multiline_timeout", c.parser.multiline_timeout);
    r.get(p, "max_line_bytes", c.parser.max_line_bytes);
  }
  if (const auto cp = root["checkpoint"]) {
    r.only(cp, "checkpoint", {"path", "interval"});
    r.get(cp, "path", c.checkpoint.path);
    r.duration(cp, "interval", c.checkpoint.interval);
  }
  if (const auto e = root["enrich"]) {
    r.only(e, "enrich", {"kubernetes", "fields"});
    r.get(e, "kubernetes", c.enrich.kubernetes);
    r.get(e, "fields", c.enrich.fields);
  }
  if (const auto o = root["output"]) {
    r.only(o, "output",
           {"type", "path", "fsync", "url", "index", "action", "username", "password", "ca_file",
            "tls_insecure", "gzip", "batch_max_bytes", "batch_max_records", "batch_interval",
            "timeout", "retry", "dead_letter_path"});
    if (const auto t = o["type"]) {
      try {
        c.output.kind = parse_output(t.as<std::string>());
      } catch (const ConfigError& e) {
        r.fail(t, e.what());
      }
    }
    r.get(o, "path", c.output.path);
    r.get(o, "fsync", c.output.fsync);
    r.get(o, "url", c.output.url);
    r.get(o, "index", c.output.index);
    r.get(o, "action", c.output.action);
    r.get(o, "username", c.output.username);
    r.get(o, "password", c.output.password);
    r.get(o, "ca_file", c.output.ca_file);
    r.get(o, "tls_insecure", c.output.tls_insecure);
    r.get(o, "gzip", c.output.gzip);
    r.get(o, "batch_max_bytes", c.output.batch_max_bytes);
    r.get(o, "batch_max_records", c.output.batch_max_records);
    r.duration(o, "batch_interval", c.output.batch_interval);
    r.duration(o, "timeout", c.output.timeout);
    r.get(o, "dead_letter_path", c.output.dead_letter_path);
    if (const auto rt = o["retry"]) {
      r.only(rt, "output.retry", {"initial_backoff", "max_backoff", "max_attempts"});
      r.duration(rt, "initial_backoff", c.output.retry.initial_backoff);
      r.duration(rt, "max_backoff", c.output.retry.max_backoff);
      r.get(rt, "max_attempts", c.output.retry.max_attempts);
    }
  }
  if (const auto m = root["metrics"]) {
    r.only(m, "metrics", {"address"});
    r.get(m, "address", c.metrics_address);
  }
  return c;
}

void validate(const Config& c) {
  if (c.input.paths.empty()) {
    throw ConfigError("no input path: set input.paths or --path");
  }
  if (c.parser.format == Format::kRegex && c.parser.regex.empty()) {
    throw ConfigError("format regex needs parser.regex (or --regex)");
  }
  if (c.parser.max_line_bytes < 64) {
    throw ConfigError("parser.max_line_bytes must be at least 64");
  }
  if (c.output.kind == OutputKind::kFile && c.output.path.empty()) {
    throw ConfigError("output file needs output.path (or --output-path)");
  }
  if (c.output.kind == OutputKind::kElasticsearch) {
    if (!c.output.url.starts_with("http://") && !c.output.url.starts_with("https://")) {
      throw ConfigError("output elasticsearch needs output.url http(s)://host:port (or --url)");
    }
    if (c.output.action != "index" && c.output.action != "create") {
      throw ConfigError("output.action must be 'index' or 'create'");
    }
  }
  if (c.output.batch_max_bytes == 0 || c.output.batch_max_records == 0) {
    throw ConfigError("output batch limits must be positive");
  }
  if (c.output.retry.initial_backoff.count() <= 0 ||
      c.output.retry.max_backoff < c.output.retry.initial_backoff) {
    throw ConfigError("output.retry: need 0 < initial_backoff <= max_backoff");
  }
}

}  // namespace pillion::logs
