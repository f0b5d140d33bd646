#pragma once
// Data-parallel ranks on PyTorch's c10d: one process per rank, launched the way torchrun
// launches them (docs/distributed.md).
//
// A job is described by the environment torchrun sets: RANK, WORLD_SIZE, LOCAL_RANK,
// MASTER_ADDR, MASTER_PORT (TORCHELASTIC_USE_AGENT_STORE=True: the launcher hosts the
// store, rank 0 does not). The ranks meet over a c10d::TCPStore at MASTER_ADDR:MASTER_PORT
// (rank 0 serves it) or a c10d::FileStore on a shared file system, then talk over Gloo
// (CPU tensors) or NCCL (CUDA tensors, only in builds against a LibTorch with CUDA).
//
// Every collective is blocking and must be called by every rank in the same order. A rank
// that dies, or one that stops calling, makes the others' next collective throw vtl::Error
// (a closed connection at once, silence after `timeout`), so a job ends instead of hanging.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

namespace vtl::dist {

/// The launcher's description of this process (torchrun's environment variables).
struct LaunchEnv {
  int rank = 0;                           ///< RANK: 0 .. world_size-1 over all machines
  int world_size = 1;                     ///< WORLD_SIZE
  int local_rank = 0;                     ///< LOCAL_RANK: index on this machine (picks the GPU)
  std::string master_addr = "127.0.0.1";  ///< MASTER_ADDR: the store's host
  int master_port = 29500;                ///< MASTER_PORT
  bool agent_store = false;  ///< TORCHELASTIC_USE_AGENT_STORE=True: the launcher serves it
  int restart_count = 0;     ///< TORCHELASTIC_RESTART_COUNT (store key prefix)

  /// Reads the variables above; throws vtl::Error naming a missing or malformed one.
  /// MASTER_ADDR may be missing when the ranks meet in `store_file` instead.
  static LaunchEnv from_environment(const std::string& store_file = {});
};

struct GroupOptions {
  /// Rendezvous, and the longest a collective may wait for another rank.
  std::chrono::milliseconds timeout = std::chrono::seconds(60);
  /// A FileStore at this path (on a file system every rank sees) instead of the TCPStore;
  /// the file must not exist when the job starts.
  std::string store_file;
  /// "gloo" (CPU tensors), "nccl" (CUDA tensors) or "auto" (nccl for "cuda", else gloo).
  std::string backend = "auto";
  /// Where training runs: "cpu" or "cuda"; with "cuda" each rank uses GPU LOCAL_RANK.
  std::string device = "cpu";
};

/// Options from the command line of `vtl train` / `vtl extract`: `timeout_seconds` <= 0
/// and an empty `store_file` fall back to $VTL_DIST_TIMEOUT (default 60) and
/// $VTL_DIST_STORE_FILE.
GroupOptions group_options(double timeout_seconds, const std::string& store_file,
                           const std::string& device);

class ProcessGroup {
 public:
  /// Joins the job `env` describes (blocks until every rank has joined, at most
  /// options.timeout).
  static std::shared_ptr<ProcessGroup> join(const LaunchEnv& env, const GroupOptions& options);
  /// join(LaunchEnv::from_environment(), options).
  static std::shared_ptr<ProcessGroup> join(const GroupOptions& options);
  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  int rank() const { return env_.rank; }
  int size() const { return env_.world_size; }
  int local_rank() const { return env_.local_rank; }
  /// Rank 0 writes checkpoints, metrics, reports and model folders.
  bool is_writer() const { return env_.rank == 0; }
  /// "gloo" or "nccl".
  const std::string& backend() const { return backend_; }
  /// The device of this rank's tensors (cpu, or cuda:LOCAL_RANK).
  torch::Device device() const { return device_; }
  std::chrono::milliseconds timeout() const { return options_.timeout; }

  /// Sums `tensors` over all ranks, in place. Tensors of one dtype are packed into
  /// flat buckets of at most `bucket_bytes`, one allreduce per bucket, all in flight at
  /// once. Every rank gets bitwise the same sums.
  void allreduce_sum(const std::vector<torch::Tensor>& tensors, int64_t bucket_bytes = 25 << 20);
  /// Copies rank `root`'s values of `tensors` into every rank's, in place.
  void broadcast(const std::vector<torch::Tensor>& tensors, int root = 0);
  /// Rank `root`'s bytes on every rank (other ranks' `bytes` are ignored).
  std::string broadcast_bytes(const std::string& bytes, int root = 0);
  /// The rows of a sharded matrix put back together: rank r holds rows r, r+W, r+2W, ...
  /// of a [rows, ...] tensor (`local` = its own rows, in order); every rank gets the whole.
  torch::Tensor gather_strided_rows(const torch::Tensor& local, int64_t rows);
  /// Returns when every rank has called it.
  void barrier();
  /// A barrier without the collective timeout, after work of uneven length (decoding a
  /// rank's images, extracting its shard). It runs on a second connection set whose
  /// timeout is a week, so a slow rank is waited for while a rank that dies still ends
  /// the wait at once.
  void wait_for_all();

  /// "rank 1 of 2" — for messages.
  std::string describe() const;

 private:
  struct Impl;
  ProcessGroup(LaunchEnv env, GroupOptions options);
  [[noreturn]] void failed(const char* what, const std::exception& error) const;

  LaunchEnv env_;
  GroupOptions options_;
  std::string backend_;
  torch::Device device_ = torch::kCPU;
  std::unique_ptr<Impl> impl_;
};

/// Positions of one rank's share of a global batch [begin, end): begin + rank,
/// begin + rank + world, ... The shares of all ranks are disjoint, cover the batch and
/// differ in size by at most one; with world 1 the share is the whole batch.
std::vector<int64_t> rank_share(int64_t begin, int64_t end, int rank, int world);

}  // namespace vtl::dist
