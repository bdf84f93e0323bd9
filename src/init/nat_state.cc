#include "init/nat_state.h"

#include <sstream>

namespace pillion::init {
namespace {

bool is_ours(std::string_view chain) {
  return chain.starts_with(kChainPrefix);
}

std::vector<std::string> words(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> out;
  for (std::string word; in >> word;) {
    out.push_back(word);
  }
  return out;
}

}  // namespace

NatState parse_nat_state(std::string_view text) {
  NatState state;
  bool in_nat = false;
  std::istringstream in{std::string(text)};
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with('*')) {
      in_nat = line == "*nat";
      continue;
    }
    if (!in_nat) {
      continue;
    }
    if (line.starts_with(':')) {
      const auto name = line.substr(1, line.find(' ') - 1);
      if (is_ours(name)) {
        state.chains.push_back(name);
      }
      continue;
    }
    const auto w = words(line);
    if (w.size() < 2 || w[0] != "-A" || (w[1] != "PREROUTING" && w[1] != "OUTPUT")) {
      continue;
    }
    for (size_t i = 2; i + 1 < w.size(); ++i) {
      if ((w[i] == "-j" || w[i] == "-g") && is_ours(w[i + 1])) {
        state.jump_rules.push_back(line);
        break;
      }
    }
  }
  return state;
}

}  // namespace pillion::init
