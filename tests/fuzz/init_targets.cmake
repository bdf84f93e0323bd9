pillion_fuzz_target(init_fuzz init_fuzz.cc LIBS pillion_init)
