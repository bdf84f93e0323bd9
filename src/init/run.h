#pragma once
// `pillion init` end to end: read what each family's nat table holds, render the restore input,
// then print it (dry run) or apply it, one iptables-restore transaction per family.
#include <ostream>

#include "init/options.h"

namespace pillion::init {

enum class Action { kInstall, kCleanup };

// Returns the exit code. Rules (dry run) go to `out`; progress and errors to `err`.
int run_init(const Options& options, Action action, bool dry_run, std::ostream& out,
             std::ostream& err);

}  // namespace pillion::init
