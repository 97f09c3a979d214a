#pragma once
// Ctrl-C and SIGTERM: one flag for the whole program. main() installs the handlers before any command runs; long
// loops poll the flag and stop between items, so every output is complete or absent, and the program exits 130
// (README, "Exit codes"). A second signal ends the process at once (still 130): the way out of a stuck step. A repeat
// within 250 ms of the first counts as the first (`timeout` delivers its signal twice: to the command and to its
// process group).
#include <atomic>
#include <string>

namespace massmap {

void install_interrupt_handlers();
// Set by the first SIGINT or SIGTERM; training loops take it as their stop flag.
const std::atomic<bool>& interrupt_flag();
bool interrupted();
// Throws Interrupted ("stopped by a signal <where>") when the flag is set.
void check_interrupted(const std::string& where);

}  // namespace massmap
