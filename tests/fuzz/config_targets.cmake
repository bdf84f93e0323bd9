# Config loader: YAML text -> Snapshot or a file:line:col error.
pillion_fuzz_target(config_fuzz config_fuzz.cc LIBS pillion_config)
