#pragma once
// kubelet's probe of the app, passed through the readiness server: GET the app's own health
// endpoint directly (never through the data path) and answer with its status code.
#include <boost/asio/awaitable.hpp>
#include <string_view>

#include "admin/admin_server.h"
#include "config/schema.h"

namespace pillion::proxy {

boost::asio::awaitable<admin::AdminResponse> probe_app(std::string_view name,
                                                       const config::AppProbe& probe);

}  // namespace pillion::proxy
