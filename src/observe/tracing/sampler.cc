#include "observe/tracing/sampler.h"

namespace pillion::observe::tracing {

bool Sampler::sample(const http::IncomingTrace& incoming, http::IdGenerator& ids) const {
  switch (incoming.decision) {
    case http::SamplingDecision::kSample:
    case http::SamplingDecision::kDebug:
      return true;
    case http::SamplingDecision::kDrop:
      return false;
    case http::SamplingDecision::kNone:
      break;
  }
  return ratio_ > 0.0 && ids.next_unit() < ratio_;
}

}  // namespace pillion::observe::tracing
