// SPDX-License-Identifier: Apache-2.0
//! @file A small fixed thread pool with a blocking parallel_for, for the CPU policy's operations.
#pragma once

#include <nerpipe/config/macros.hpp>

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

NERPIPE_NAMESPACE_BEGIN

/// Runs `fn(begin, end)` over [0, n) split into contiguous chunks, one per thread. The calling thread
/// takes a chunk too, so a pool of size 1 runs everything inline with no synchronisation.
class thread_pool {
 public:
  explicit thread_pool(unsigned threads) : size_(std::max(1u, threads)) {
    for (unsigned i = 1; i < size_; ++i) workers_.emplace_back([this, i] { work(i); });
  }
  thread_pool(const thread_pool&) = delete;
  thread_pool& operator=(const thread_pool&) = delete;
  ~thread_pool() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
  }

  [[nodiscard]] unsigned size() const noexcept { return size_; }

  /// Blocks until every chunk is done; rethrows the first exception a chunk threw. Not reentrant:
  /// one parallel_for at a time per pool (a policy is used by one thread at a time).
  void parallel_for(std::size_t n, const std::function<void(std::size_t, std::size_t)>& fn, std::size_t grain = 1) {
    if (n == 0) return;
    const std::size_t chunks = std::min<std::size_t>(size_, std::max<std::size_t>(1, n / std::max<std::size_t>(1, grain)));
    if (chunks <= 1) {
      fn(0, n);
      return;
    }
    {
      std::lock_guard lock(mutex_);
      job_ = &fn;
      n_ = n;
      chunks_ = chunks;
      pending_ = chunks - 1;
      error_ = nullptr;
      ++generation_;
    }
    wake_.notify_all();
    run_chunk(0);
    std::unique_lock lock(mutex_);
    done_.wait(lock, [this] { return pending_ == 0; });
    job_ = nullptr;
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
  }

 private:
  void run_chunk(std::size_t c) {
    const std::size_t begin = n_ * c / chunks_, end = n_ * (c + 1) / chunks_;
    try {
      if (begin < end) (*job_)(begin, end);
    } catch (...) {
      std::lock_guard lock(mutex_);
      if (!error_) error_ = std::current_exception();
    }
  }

  void work(unsigned index) {
    std::size_t seen = 0;
    for (;;) {
      std::size_t chunks;
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
        chunks = chunks_;
      }
      if (index < chunks) {
        run_chunk(index);
        std::lock_guard lock(mutex_);
        if (--pending_ == 0) done_.notify_one();
      }
    }
  }

  unsigned size_;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  const std::function<void(std::size_t, std::size_t)>* job_ = nullptr;
  std::size_t n_ = 0, chunks_ = 0, pending_ = 0, generation_ = 0;
  std::exception_ptr error_;
  bool stop_ = false;
};

NERPIPE_NAMESPACE_END
