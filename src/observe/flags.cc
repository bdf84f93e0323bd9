#include "observe/flags.h"

namespace pillion::observe {

std::string_view flag_code(Flag flag) {
  switch (flag) {
    case Flag::kUpstreamConnectFailure:
      return "UF";
    case Flag::kUpstreamReset:
      return "UR";
    case Flag::kUpstreamTimeout:
      return "UT";
    case Flag::kStreamIdleTimeout:
      return "SI";
    case Flag::kDownstreamProtocolError:
      return "DPE";
    case Flag::kBodyTooLarge:
      return "BL";
    case Flag::kDownstreamDisconnect:
      return "DC";
    case Flag::kNoRoute:
      return "NR";
    case Flag::kUpstreamProtocolError:
      return "UPE";
    case Flag::kRequestHeaderTimeout:
      return "RT";
    case Flag::kLocalReset:
      return "LR";
    case Flag::kRateLimited:
      return "RL";
    case Flag::kFaultAbort:
      return "FI";
    case Flag::kFaultDelay:
      return "DI";
    case Flag::kUpstreamOverflow:
      return "UO";
    case Flag::kNoHealthyUpstream:
      return "UH";
    case Flag::kRetryLimitExceeded:
      return "URX";
    case Flag::kAccessDenied:
      return "AD";
    case Flag::kCount:
      break;
  }
  return "?";
}

void append_flags(Flags flags, std::string& out) {
  if (flags == 0) {
    out.push_back('-');
    return;
  }
  bool first = true;
  for (int i = 0; i < static_cast<int>(Flag::kCount); ++i) {
    if (flags & (Flags{1} << i)) {
      if (!first) {
        out.push_back(',');
      }
      out.append(flag_code(static_cast<Flag>(i)));
      first = false;
    }
  }
}

}  // namespace pillion::observe
