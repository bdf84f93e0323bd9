#pragma once
// Which requests are traced. A caller's decision is honoured (W3C sampled flag, B3 sampling
// state or debug), so one trace is recorded by every hop or by none; a trace this hop starts,
// or one whose caller left the decision open (B3 without a sampling state), is sampled with
// probability `ratio` from the worker's own generator: no lock, no shared state.
#include "http/ids.h"
#include "http/propagation.h"

namespace pillion::observe::tracing {

class Sampler {
 public:
  explicit Sampler(double ratio) : ratio_(ratio) {}

  bool sample(const http::IncomingTrace& incoming, http::IdGenerator& ids) const;
  double ratio() const { return ratio_; }

 private:
  double ratio_;
};

}  // namespace pillion::observe::tracing
