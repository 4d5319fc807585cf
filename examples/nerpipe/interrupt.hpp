// SPDX-License-Identifier: Apache-2.0
//! @file The `nerpipe` program's signals: the first SIGINT/SIGTERM asks the run to stop reading and finish
//! what is in flight (the reader stops handing out records, so the executors drain on their own); a
//! second one exits at once. A watchdog bounds the drain: past its deadline the records written so far
//! are flushed, synced and checkpointed, and the process exits. SIGPIPE is ignored, so a closed pipe is
//! an EPIPE write error the program can end quietly on.
#pragma once

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <signal.h>
#include <unistd.h>

namespace nerpipe_cli {

/// The signal that asked the run to stop (0: none yet). Written by the handler, read anywhere.
inline std::atomic<int> stop_signal{0};

inline const char* signal_name(int sig) noexcept { return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "a signal"; }

/// Exit status of a run stopped by `sig`: 128 + its number (130 SIGINT, 143 SIGTERM), as shells report.
inline int interrupted_status(int sig) noexcept { return 128 + sig; }

extern "C" inline void nerpipe_on_stop_signal(int sig) {
  // Only async-signal-safe calls here: an atomic exchange, write(2), _exit(2).
  int expected = 0;
  if (stop_signal.compare_exchange_strong(expected, sig)) {
    static constexpr char first_int[] =
        "\nnerpipe: SIGINT: no more input is read; the records in flight are finished and written (a second "
        "signal exits at once)\n";
    static constexpr char first_term[] =
        "\nnerpipe: SIGTERM: no more input is read; the records in flight are finished and written (a second "
        "signal exits at once)\n";
    const char* msg = sig == SIGINT ? first_int : first_term;
    const std::size_t n = sig == SIGINT ? sizeof first_int - 1 : sizeof first_term - 1;
    [[maybe_unused]] const auto r = ::write(2, msg, n);
    return;
  }
  static constexpr char again[] =
      "\nnerpipe: second signal: exiting now; the output holds complete records up to the last checkpoint (use --resume)\n";
  [[maybe_unused]] const auto r = ::write(2, again, sizeof again - 1);
  ::_exit(128 + sig);
}

/// Installs the SIGINT/SIGTERM handler and ignores SIGPIPE.
inline void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = nerpipe_on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  struct sigaction ign {};
  ign.sa_handler = SIG_IGN;
  sigemptyset(&ign.sa_mask);
  sigaction(SIGPIPE, &ign, nullptr);
}

/// After a stop signal, calls `on_deadline` (which must end the process) if the run has not finished
/// within `limit`. Polls the flag (a handler cannot wake a condition variable).
class drain_watchdog {
 public:
  drain_watchdog(std::chrono::milliseconds limit, std::function<void(int sig)> on_deadline)
      : limit_(limit), on_deadline_(std::move(on_deadline)), thread_([this] { loop(); }) {}
  drain_watchdog(const drain_watchdog&) = delete;
  drain_watchdog& operator=(const drain_watchdog&) = delete;
  ~drain_watchdog() {
    done_.store(true);
    thread_.join();
  }

 private:
  void loop() {
    using clock = std::chrono::steady_clock;
    clock::time_point deadline{};
    while (!done_.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      const int sig = stop_signal.load();
      if (sig == 0) continue;
      if (deadline == clock::time_point{}) deadline = clock::now() + limit_;
      if (clock::now() >= deadline && !done_.load()) {
        on_deadline_(sig);
        return;
      }
    }
  }
  std::chrono::milliseconds limit_;
  std::function<void(int)> on_deadline_;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

/// `args` as one shell command line (arguments quoted where a shell would split or expand them).
inline std::string shell_command(const std::vector<std::string>& args) {
  std::string out;
  for (const auto& a : args) {
    if (!out.empty()) out += ' ';
    const bool plain = !a.empty() && a.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%") ==
                                         std::string::npos;
    if (plain) {
      out += a;
      continue;
    }
    out += '\'';
    for (const char c : a) {
      if (c == '\'') out += "'\\''";
      else out += c;
    }
    out += '\'';
  }
  return out;
}

}  // namespace nerpipe_cli
