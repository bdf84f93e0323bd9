# Config loader: YAML text -> Snapshot or a file:line:col error.
pillion_fuzz_target(config_fuzz config_fuzz.cc LIBS pillion_config)
# Route matching over a fuzzed config and request head: links the router alone (no coroutines).
pillion_fuzz_target(route_match_fuzz route_match_fuzz.cc LIBS pillion_router pillion_config pillion_http)
