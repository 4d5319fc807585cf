// SPDX-License-Identifier: Apache-2.0
//! @file cuda_policy: one CUDA device, one stream, one cuBLASLt handle + workspace; device buffers and transfers.
#pragma once
#if !defined(__CUDACC__)
#error "nerpipe: this header needs nvcc; include <nerpipe/cuda.cuh> from a .cu file"
#endif

#include <nerpipe/config/macros.hpp>
#include <nerpipe/core/error.hpp>
#include <nerpipe/core/numeric.hpp>
#include <nerpipe/cuda/error.cuh>
#include <nerpipe/policy/device_policy.hpp>
#include <nerpipe/policy/memory_space.hpp>

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

NERPIPE_NAMESPACE_BEGIN

/// Number of CUDA devices this process can use; 0 when there is no driver or no device (never throws).
[[nodiscard]] inline int cuda_device_count() noexcept {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return n;
}

namespace detail {

/// Makes `device` current for a scope and restores the previous device afterwards.
class device_guard {
 public:
  explicit device_guard(int device) {
    NERPIPE_CUDA_CHECK(cudaGetDevice(&previous_));
    if (previous_ != device) {
      NERPIPE_CUDA_CHECK(cudaSetDevice(device));
      changed_ = true;
    }
  }
  ~device_guard() {
    if (changed_) (void)cudaSetDevice(previous_);
  }
  device_guard(const device_guard&) = delete;
  device_guard& operator=(const device_guard&) = delete;

 private:
  int previous_ = 0;
  bool changed_ = false;
};

/// Everything a cuda_policy owns. Copies of a policy share one of these; it dies with the last copy
/// (and the last buffer allocated through it, which frees on its stream).
struct cuda_resources {
  int device = 0;
  int sm_count = 0;
  int cc_major = 0;
  int cc_minor = 0;
  bool async_alloc = false;  // the device supports stream-ordered allocation (cudaMallocAsync)
  cudaStream_t stream = nullptr;
  cublasLtHandle_t lt = nullptr;
  void* workspace = nullptr;
  std::size_t workspace_bytes = 0;
  std::mutex gemm_mutex;                   // guards gemm_state, bias_scratch and the cached descriptors' pointers
  std::shared_ptr<void> gemm_state;        // the gemm plan cache (cuda/gemm.cuh), created on first use
  std::shared_ptr<void> attention_state;   // cuDNN handle and SDPA graphs (cuda/cudnn_attention.cuh), on first use
  void* bias_scratch = nullptr;            // fp32 biases converted to a 16-bit output type (stream-ordered reuse)
  std::size_t bias_scratch_bytes = 0;

  /// At least `bytes` of scratch, valid for work enqueued on `stream` after this call. Caller holds gemm_mutex.
  void* ensure_bias_scratch(std::size_t bytes) {
    if (bytes <= bias_scratch_bytes) return bias_scratch;
    bytes = (bytes + 4095) / 4096 * 4096;
    if (bias_scratch != nullptr) {
      NERPIPE_CUDA_CHECK(async_alloc ? cudaFreeAsync(bias_scratch, stream) : cudaFree(bias_scratch));
      bias_scratch = nullptr;
      bias_scratch_bytes = 0;
    }
    if (async_alloc)
      NERPIPE_CUDA_CHECK(cudaMallocAsync(&bias_scratch, bytes, stream));
    else
      NERPIPE_CUDA_CHECK(cudaMalloc(&bias_scratch, bytes));
    bias_scratch_bytes = bytes;
    return bias_scratch;
  }

  explicit cuda_resources(int dev) : device(dev) {
    int count = 0;
    NERPIPE_CUDA_CHECK(cudaGetDeviceCount(&count));
    if (dev < 0 || dev >= count)
      NERPIPE_THROW(cuda_error(errc::cuda_no_device, "cuda_policy: device " + std::to_string(dev) +
                                                         " requested; expected 0 <= device < " +
                                                         std::to_string(count) + " (devices visible)"));
    device_guard guard(dev);
    NERPIPE_CUDA_CHECK(cudaDeviceGetAttribute(&sm_count, cudaDevAttrMultiProcessorCount, dev));
    NERPIPE_CUDA_CHECK(cudaDeviceGetAttribute(&cc_major, cudaDevAttrComputeCapabilityMajor, dev));
    NERPIPE_CUDA_CHECK(cudaDeviceGetAttribute(&cc_minor, cudaDevAttrComputeCapabilityMinor, dev));
    int pools = 0;
    NERPIPE_CUDA_CHECK(cudaDeviceGetAttribute(&pools, cudaDevAttrMemoryPoolsSupported, dev));
    async_alloc = pools != 0;
    try {
      if (async_alloc) {
        // Keep freed blocks in the pool instead of returning them at every synchronisation: batches
        // allocate the same sizes over and over.
        cudaMemPool_t pool = nullptr;
        NERPIPE_CUDA_CHECK(cudaDeviceGetDefaultMemPool(&pool, dev));
        std::uint64_t threshold = UINT64_MAX;
        NERPIPE_CUDA_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold));
      }
      NERPIPE_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
      NERPIPE_CUBLAS_CHECK(cublasLtCreate(&lt));
      // cuBLAS recommends 32 MiB of workspace on Hopper and 4 MiB elsewhere (facts-cuda §1.6).
      workspace_bytes = cc_major >= 9 ? (std::size_t{32} << 20) : (std::size_t{4} << 20);
      NERPIPE_CUDA_CHECK(cudaMalloc(&workspace, workspace_bytes));
    } catch (...) {
      release();
      throw;
    }
  }
  ~cuda_resources() { release(); }
  cuda_resources(const cuda_resources&) = delete;
  cuda_resources& operator=(const cuda_resources&) = delete;

 private:
  void release() noexcept {
    if (cudaSetDevice(device) != cudaSuccess) (void)cudaGetLastError();
    if (stream != nullptr) (void)cudaStreamSynchronize(stream);
    gemm_state.reset();
    attention_state.reset();
    if (bias_scratch != nullptr) (void)cudaFree(bias_scratch);
    bias_scratch = nullptr;
    if (workspace != nullptr) (void)cudaFree(workspace);
    if (lt != nullptr) (void)cublasLtDestroy(lt);
    if (stream != nullptr) (void)cudaStreamDestroy(stream);
    workspace = nullptr;
    lt = nullptr;
    stream = nullptr;
  }
};

}  // namespace detail

class cuda_policy;

/// Owning, move-only array in one device's memory, allocated stream-ordered on its policy's stream.
/// Elements are left uninitialised. Freed on the same stream, so work queued before the free still sees it.
/// Work issued through another policy (another stream) may use the buffer only after `synchronize()` on
/// the policy that allocated and filled it (e.g. weights uploaded once, then shared by several policies).
template <class T>
class cuda_buffer {
  static_assert(std::is_trivially_copyable_v<T>, "cuda_buffer holds trivially copyable elements");

 public:
  using value_type = T;
  using memory_space = cuda_space;

  cuda_buffer() = default;
  cuda_buffer(const cuda_policy& p, std::size_t n);
  cuda_buffer(cuda_buffer&& o) noexcept
      : res_(std::move(o.res_)), data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  cuda_buffer& operator=(cuda_buffer&& o) noexcept {
    if (this != &o) {
      reset();
      res_ = std::move(o.res_);
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  cuda_buffer(const cuda_buffer&) = delete;
  cuda_buffer& operator=(const cuda_buffer&) = delete;
  ~cuda_buffer() { reset(); }

  [[nodiscard]] T* data() noexcept { return data_; }
  [[nodiscard]] const T* data() const noexcept { return data_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] std::size_t size_bytes() const noexcept { return size_ * sizeof(T); }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  /// Device memory: the span may be handed to ops and to download, never dereferenced on the host.
  [[nodiscard]] std::span<T> span() noexcept { return {data_, size_}; }
  [[nodiscard]] std::span<const T> span() const noexcept { return {data_, size_}; }

  /// Frees now (stream-ordered); the buffer becomes empty.
  void reset() noexcept {
    if (data_ != nullptr && res_) {
      // Destructors do not throw: a failure here can only follow an earlier, reported error.
      int previous = 0;
      const bool have_prev = cudaGetDevice(&previous) == cudaSuccess;
      (void)cudaSetDevice(res_->device);
      const cudaError_t e = res_->async_alloc ? cudaFreeAsync(data_, res_->stream) : cudaFree(data_);
      if (e != cudaSuccess) (void)cudaGetLastError();
      if (have_prev) (void)cudaSetDevice(previous);
    }
    data_ = nullptr;
    size_ = 0;
    res_.reset();
  }

 private:
  std::shared_ptr<detail::cuda_resources> res_;
  T* data_ = nullptr;
  std::size_t size_ = 0;
};

/// Runs operations on one CUDA device, in order, on one stream. Cheap to copy: copies share the device
/// resources (stream, cuBLASLt handle and workspace), so work issued through any copy is ordered.
/// Use one policy object (`cuda_policy{dev}`) per executor thread and device.
///
/// `compute_dtype()` is the precision components should run in: dtype::f32 (exact mode: fp32
/// everywhere, no TF32) or dtype::bf16 / dtype::f16 (fast mode: half-precision activations and
/// weights, fp32 accumulation). The ops themselves follow the element types they are given.
class cuda_policy {
 public:
  using memory_space = cuda_space;
  template <class T>
  using buffer = cuda_buffer<T>;

  explicit cuda_policy(int device = 0, dtype compute = dtype::f32)
      : res_(std::make_shared<detail::cuda_resources>(device)), compute_(compute) {}

  static constexpr std::string_view name() noexcept { return "cuda"; }

  [[nodiscard]] int device() const noexcept { return res_->device; }
  [[nodiscard]] cudaStream_t stream() const noexcept { return res_->stream; }
  [[nodiscard]] cublasLtHandle_t lt_handle() const noexcept { return res_->lt; }
  [[nodiscard]] void* workspace() const noexcept { return res_->workspace; }
  [[nodiscard]] std::size_t workspace_bytes() const noexcept { return res_->workspace_bytes; }
  [[nodiscard]] int sm_count() const noexcept { return res_->sm_count; }
  /// Bytes of device memory free now (cudaMemGetInfo): executors size batches to it before they run.
  [[nodiscard]] std::size_t free_memory_bytes() const {
    detail::device_guard guard(res_->device);
    std::size_t free_bytes = 0, total = 0;
    NERPIPE_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total));
    return free_bytes;
  }
  /// Compute capability as major * 10 + minor (90 for H100/H200).
  [[nodiscard]] int compute_capability() const noexcept { return res_->cc_major * 10 + res_->cc_minor; }

  [[nodiscard]] dtype compute_dtype() const noexcept { return compute_; }
  /// A copy that shares this policy's resources but asks components for another precision.
  [[nodiscard]] cuda_policy with_compute_dtype(dtype d) const {
    cuda_policy p = *this;
    p.compute_ = d;
    return p;
  }

  /// Waits for all work issued through this policy (and its copies).
  void synchronize() const {
    detail::device_guard guard(res_->device);
    NERPIPE_CUDA_CHECK(cudaStreamSynchronize(res_->stream));
  }

  /// Copies host data into a new device buffer. On return the host memory may be reused.
  template <class T>
  [[nodiscard]] buffer<T> upload(std::span<const T> host) const {
    buffer<T> b(*this, host.size());
    if (host.empty()) return b;
    detail::device_guard guard(res_->device);
    NERPIPE_CUDA_CHECK(cudaMemcpyAsync(b.data(), host.data(), host.size_bytes(), cudaMemcpyHostToDevice, res_->stream));
    // From pageable memory the copy has left the host buffer when cudaMemcpyAsync returns; from
    // pinned memory it has not, so wait in that case.
    cudaPointerAttributes attr{};
    if (cudaPointerGetAttributes(&attr, host.data()) != cudaSuccess) (void)cudaGetLastError();
    if (attr.type == cudaMemoryTypeHost) NERPIPE_CUDA_CHECK(cudaStreamSynchronize(res_->stream));
    return b;
  }
  template <class T>
  [[nodiscard]] buffer<T> upload(std::span<T> host) const {
    return upload(std::span<const T>(host));
  }

  /// Copies min(src.size(), host.size()) elements of device memory to the host; returns when they are there.
  template <class T>
  void download(std::span<const T> src, std::span<T> host) const {
    const std::size_t n = std::min(src.size(), host.size());
    detail::device_guard guard(res_->device);
    if (n != 0)
      NERPIPE_CUDA_CHECK(cudaMemcpyAsync(host.data(), src.data(), n * sizeof(T), cudaMemcpyDeviceToHost, res_->stream));
    NERPIPE_CUDA_CHECK(cudaStreamSynchronize(res_->stream));
  }
  template <class T>
  void download(std::span<T> src, std::span<T> host) const {
    download(std::span<const T>(src), host);
  }

  /// Pinned host staging for a stage's per-pass transfers (policy/staging.hpp): see the definition below.
  template <class T>
  class pinned_staging;

  /// The shared resources (for nerpipe's own CUDA code).
  [[nodiscard]] detail::cuda_resources& resources() const noexcept { return *res_; }
  [[nodiscard]] const std::shared_ptr<detail::cuda_resources>& shared_resources() const noexcept { return res_; }

 private:
  std::shared_ptr<detail::cuda_resources> res_;
  dtype compute_ = dtype::f32;
};

template <class T>
cuda_buffer<T>::cuda_buffer(const cuda_policy& p, std::size_t n) : res_(p.shared_resources()), size_(n) {
  if (n == 0) return;
  detail::device_guard guard(res_->device);
  void* ptr = nullptr;
  // Round up to 256 B: cuBLASLt and vector loads prefer whole aligned blocks, and rows of the next
  // buffer never share a sector with this one.
  const std::size_t bytes = (n * sizeof(T) + 255) / 256 * 256;
  if (res_->async_alloc)
    NERPIPE_CUDA_CHECK(cudaMallocAsync(&ptr, bytes, res_->stream));
  else
    NERPIPE_CUDA_CHECK(cudaMalloc(&ptr, bytes));
  data_ = static_cast<T*>(ptr);
}

/// Pinned (page-locked) host memory plus a device buffer for one stage's per-pass copies. upload() enqueues an
/// asynchronous copy from pinned memory and returns at once; host() waits for that copy before handing the
/// pinned memory out again; download() copies at full bus speed and waits. Both sides only grow. One object
/// serves one thread at a time (a stage's scratch).
template <class T>
class cuda_policy::pinned_staging {
  static_assert(std::is_trivially_copyable_v<T>, "pinned_staging holds trivially copyable elements");

 public:
  pinned_staging() = default;
  pinned_staging(const pinned_staging&) = delete;
  pinned_staging& operator=(const pinned_staging&) = delete;
  ~pinned_staging() {
    if (event_ != nullptr) {
      (void)cudaEventSynchronize(event_);
      (void)cudaEventDestroy(event_);
    }
    if (host_ != nullptr) (void)cudaFreeHost(host_);
  }

  std::span<T> host(const cuda_policy& p, std::size_t n) {
    wait();
    reserve_host(p, n);
    return {host_, n};
  }

  const T* upload(const cuda_policy& p, std::size_t n) {
    if (n == 0) return device_.data();
    detail::device_guard guard(p.device());
    if (device_.size() < n) device_ = cuda_buffer<T>(p, n + n / 4);  // the old one is freed in stream order
    NERPIPE_CUDA_CHECK(cudaMemcpyAsync(device_.data(), host_, n * sizeof(T), cudaMemcpyHostToDevice, p.stream()));
    record(p);
    return device_.data();
  }

  std::span<const T> download(const cuda_policy& p, const T* src, std::size_t n) {
    wait();
    reserve_host(p, n);
    if (n == 0) return {host_, 0};
    detail::device_guard guard(p.device());
    NERPIPE_CUDA_CHECK(cudaMemcpyAsync(host_, src, n * sizeof(T), cudaMemcpyDeviceToHost, p.stream()));
    record(p);
    wait();
    return {host_, n};
  }

 private:
  void wait() {
    if (pending_) NERPIPE_CUDA_CHECK(cudaEventSynchronize(event_));
    pending_ = false;
  }
  void record(const cuda_policy& p) {
    if (event_ == nullptr) NERPIPE_CUDA_CHECK(cudaEventCreateWithFlags(&event_, cudaEventDisableTiming));
    NERPIPE_CUDA_CHECK(cudaEventRecord(event_, p.stream()));
    pending_ = true;
  }
  void reserve_host(const cuda_policy& p, std::size_t n) {
    if (n <= capacity_) return;
    detail::device_guard guard(p.device());
    if (host_ != nullptr) NERPIPE_CUDA_CHECK(cudaFreeHost(host_));
    host_ = nullptr;
    capacity_ = 0;
    const std::size_t cap = n + n / 4;
    void* ptr = nullptr;
    NERPIPE_CUDA_CHECK(cudaMallocHost(&ptr, cap * sizeof(T)));
    host_ = static_cast<T*>(ptr);
    capacity_ = cap;
  }

  T* host_ = nullptr;
  std::size_t capacity_ = 0;
  cuda_buffer<T> device_;
  cudaEvent_t event_ = nullptr;
  bool pending_ = false;
};

static_assert(device_policy<cuda_policy>);
static_assert(can_access<cuda_policy, cuda_space> && !can_access<cuda_policy, host_space>);

NERPIPE_NAMESPACE_END
